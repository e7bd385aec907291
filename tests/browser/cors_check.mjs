// Loads a page from a second origin on loopback in headless Chromium and, from it,
// reads an object with fetch() and writes one with a PUT that needs a preflight, both
// through presigned URLs of the daemon; reports as one JSON line on stdout what each
// fetch got (its status and body, or the error a CORS refusal raises):
//   node cors_check.mjs PAGE_URL GET_URL PUT_URL
// The pytest suite (tests/python/test_cors.py) judges the result.
import { chromium } from "playwright-core";

const [pageUrl, getUrl, putUrl] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const report = { errors: [] };
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => report.errors.push(String(e)));
  await page.goto(pageUrl, { waitUntil: "load" });
  report.origin = await page.evaluate(() => window.location.origin);
  report.get = await page.evaluate(async (url) => {
    try {
      const r = await fetch(url);
      return { status: r.status, body: await r.text(), etag: r.headers.get("ETag") };
    } catch (e) {
      return { error: String(e) };
    }
  }, getUrl);
  // A JSON content type makes this a non-simple request: the browser asks first.
  report.put = await page.evaluate(async (url) => {
    try {
      const r = await fetch(url, { method: "PUT", body: "{\"from\":\"browser\"}",
                                   headers: { "Content-Type": "application/json" } });
      return { status: r.status, body: await r.text() };
    } catch (e) {
      return { error: String(e) };
    }
  }, putUrl);
} catch (error) {
  report.errors.push("check: " + String(error));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
