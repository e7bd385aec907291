//! The address of an upstream server, from a URL such as `https://s3.example.com` or
//! `http://127.0.0.1:10000/devstoreaccount1`: scheme, host, port and a base path that
//! every request target of the endpoint starts with.

use std::fmt;
use std::net::Ipv6Addr;

/// How the client talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// The port a URL of this scheme means when it names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// One upstream server and the base path under it. Connections are pooled per
/// origin (scheme, host, port): endpoints that differ only in base path share them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    scheme: Scheme,
    /// Lowercased; an IPv6 address without its brackets.
    host: String,
    port: u16,
    /// Empty, or starting with `/` and not ending with one.
    base_path: String,
    /// `scheme://host:port`, the pool's key and the name in error messages.
    origin: String,
}

impl Endpoint {
    /// Parses `scheme://host[:port][/base/path]`. The scheme is `http` or `https`; an
    /// IPv6 host is written in brackets; user information, a query or a fragment are
    /// refused, as is a port of 0. A trailing `/` of the base path is dropped.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let bad = |why: &str| format!("invalid upstream URL {url:?}: {why}");
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("it must start with http:// or https://"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(bad("the scheme must be http or https")),
        };
        if rest.contains(['?', '#']) {
            return Err(bad("a query or fragment is not allowed"));
        }
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad("user information is not allowed"));
        }
        let (host, port) = split_authority(authority).map_err(bad)?;
        let port = match port {
            None => scheme.default_port(),
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => port,
                _ => return Err(bad("the port must be a number from 1 to 65535")),
            },
        };
        if path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b >= 0x80)
        {
            return Err(bad("the path must be percent-encoded"));
        }
        let base_path = path.trim_end_matches('/').to_string();
        let host = host.to_ascii_lowercase();
        let origin = format!("{}://{}", scheme.as_str(), authority_text(&host, port));
        Ok(Endpoint {
            scheme,
            host,
            port,
            base_path,
            origin,
        })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host name or IP address (an IPv6 address without brackets), lowercased.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path every target starts with: empty, or `/segment...` without a final `/`.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// `scheme://host:port`: what the pool keys connections by and errors name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The value of the `Host` header the client sends (and a signature must cover):
    /// the host, with the port only when it is not the scheme's default.
    pub fn host_header(&self) -> String {
        if self.port == self.scheme.default_port() {
            bracketed(&self.host)
        } else {
            authority_text(&self.host, self.port)
        }
    }

    /// The request target for `path_and_query` (already percent-encoded, starting with
    /// `/`) under the base path: `/base` + `/bucket/key?x=1`. The client sends targets
    /// exactly as given, so this is also what a signature must cover.
    pub fn target(&self, path_and_query: &str) -> String {
        debug_assert!(path_and_query.starts_with('/'), "targets start with /");
        format!("{}{}", self.base_path, path_and_query)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin, self.base_path)
    }
}

/// Splits `host[:port]` or `[v6]:port`; the port text is returned unparsed.
fn split_authority(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (address, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing bracket")?;
        if address.parse::<Ipv6Addr>().is_err() {
            return Err("the bracketed host is not an IPv6 address");
        }
        return match after {
            "" => Ok((address, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((address, Some(port))),
                None => Err("only a port may follow the IPv6 address"),
            },
        };
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_';
    if host.is_empty() || !host.bytes().all(valid) {
        return Err("the host must be a name or an IP address");
    }
    Ok((host, port))
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn authority_text(host: &str, port: u16) -> String {
    format!("{}:{port}", bracketed(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let e = Endpoint::parse("HTTPS://S3.Example.com").unwrap();
        assert_eq!(
            (e.scheme(), e.host(), e.port(), e.base_path()),
            (Scheme::Https, "s3.example.com", 443, "")
        );
        assert_eq!(e.host_header(), "s3.example.com");
        assert_eq!(e.origin(), "https://s3.example.com:443");
        assert_eq!(e.target("/b/k?acl"), "/b/k?acl");

        let e = Endpoint::parse("http://127.0.0.1:10000/devstoreaccount1/").unwrap();
        assert_eq!(
            (e.scheme(), e.host(), e.port(), e.base_path()),
            (Scheme::Http, "127.0.0.1", 10000, "/devstoreaccount1")
        );
        assert_eq!(e.host_header(), "127.0.0.1:10000");
        assert_eq!(e.target("/c/b"), "/devstoreaccount1/c/b");
        assert_eq!(e.to_string(), "http://127.0.0.1:10000/devstoreaccount1");

        let e = Endpoint::parse("http://[::1]:9000/").unwrap();
        assert_eq!((e.host(), e.port(), e.base_path()), ("::1", 9000, ""));
        assert_eq!(e.host_header(), "[::1]:9000");
        let e = Endpoint::parse("https://[::1]").unwrap();
        assert_eq!((e.host_header(), e.port()), ("[::1]".to_string(), 443));
        assert_eq!(
            Endpoint::parse("http://h:80").unwrap().host_header(),
            "h",
            "the default port is left out of Host"
        );
    }

    #[test]
    fn refuses_bad_urls() {
        for bad in [
            "s3.example.com",
            "ftp://h/",
            "http://",
            "http://:80",
            "http://h:0",
            "http://h:65536",
            "http://h:+80",
            "http://h:x",
            "http://u:p@h/",
            "http://h/?q",
            "http://h/#f",
            "http://[::1/",
            "http://[zz]:80",
            "http://[::1]x",
            "http://h h/",
            "http://h/a b",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
