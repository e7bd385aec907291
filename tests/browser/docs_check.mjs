// Opens the daemon's /docs in headless Chromium and reports, as one JSON line on
// stdout, what the page rendered and every request it made:
//   node docs_check.mjs http://127.0.0.1:PORT
// The pytest suite (tests/python/test_docs_browser.py) judges the result.
import { chromium } from "playwright-core";

const endpoint = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Without the background-networking flags Chromium calls Google's hosts at start,
  // which a closed network refuses.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const report = { requests: [], responses: [], failed: [], errors: [] };
try {
  const page = await browser.newPage();
  page.on("request", (r) => report.requests.push(r.url()));
  page.on("response", (r) => report.responses.push({ url: r.url(), status: r.status() }));
  page.on("requestfailed", (r) => report.failed.push({ url: r.url(), why: r.failure()?.errorText }));
  page.on("console", (m) => { if (m.type() === "error") report.errors.push(m.text()); });
  page.on("pageerror", (e) => report.errors.push(String(e)));
  await page.goto(endpoint + "/docs", { waitUntil: "load" });
  await page.waitForSelector(".opblock", { timeout: 30000 });
  report.title = await page.locator(".info .title").first().innerText();
  report.operations = await page.$$eval(".opblock", (blocks) => blocks.map((b) => ({
    method: b.querySelector(".opblock-summary-method")?.textContent.trim(),
    path: b.querySelector(".opblock-summary-path")?.getAttribute("data-path"),
  })));
  report.loadErrors = [...report.errors];
  // Try one operation from the page: an unsigned ListBuckets, which S3 refuses.
  const list = page.locator(".opblock-get", { has: page.locator('[data-path="/"]') }).first();
  await list.locator(".opblock-summary").click();
  await list.locator("button.try-out__btn").click();
  await list.locator("button.execute").click();
  const status = list.locator(".live-responses-table tbody .response-col_status").first();
  await status.waitFor({ timeout: 15000 });
  report.tried = { status: (await status.innerText()).trim(),
                   body: await list.locator(".live-responses-table .microlight").first().innerText() };
} catch (error) {
  report.errors.push("check: " + String(error));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
