//! AWS Signature Version 4 verification for requests from AWS SDKs.
//!
//! Verification is off unless access keys are configured; then every AWS-protocol request must carry a
//! valid `AWS4-HMAC-SHA256` signature made with one of them.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("the request is not signed: the Authorization header is missing")]
    Missing,
    #[error("the Authorization header is not an AWS4-HMAC-SHA256 signature")]
    Malformed,
    #[error("the security token included in the request is invalid: unknown access key {0}")]
    UnknownAccessKey(String),
    #[error("the X-Amz-Date header is missing or malformed")]
    MissingDate,
    #[error(
        "the request signature we calculated does not match the signature you provided; check your AWS secret access key and signing method"
    )]
    Mismatch,
}

impl SigError {
    /// AWS's `__type` for this failure.
    pub fn aws_type(&self) -> &'static str {
        match self {
            SigError::Missing => "MissingAuthenticationTokenException",
            SigError::UnknownAccessKey(_) => "UnrecognizedClientException",
            SigError::Malformed | SigError::MissingDate => "IncompleteSignatureException",
            SigError::Mismatch => "InvalidSignatureException",
        }
    }
}

/// What was parsed out of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization {
    pub access_key: String,
    /// `DATE/REGION/SERVICE/aws4_request`
    pub scope: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_authorization(header: &str) -> Result<Authorization, SigError> {
    let rest = header
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or(SigError::Malformed)?
        .trim();
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(SigError::Malformed)?;
        match key.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => {}
        }
    }
    let credential = credential.ok_or(SigError::Malformed)?;
    let mut pieces = credential.splitn(2, '/');
    let access_key = pieces.next().ok_or(SigError::Malformed)?.to_owned();
    let scope = pieces.next().ok_or(SigError::Malformed)?.to_owned();
    let scope_parts: Vec<&str> = scope.split('/').collect();
    if scope_parts.len() != 4 || scope_parts[3] != "aws4_request" {
        return Err(SigError::Malformed);
    }
    Ok(Authorization {
        access_key,
        date: scope_parts[0].to_owned(),
        region: scope_parts[1].to_owned(),
        service: scope_parts[2].to_owned(),
        scope,
        signed_headers: signed_headers
            .ok_or(SigError::Malformed)?
            .split(';')
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        signature: signature.ok_or(SigError::Malformed)?.to_ascii_lowercase(),
    })
}

/// The parts of a request that a signature covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Header names in any case; repeated headers appear once each.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Checks `request` against its Authorization header, looking secrets up with `secret_for`.
pub fn verify(
    request: &SignedRequest<'_>,
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<(), SigError> {
    let header = header_value(request.headers, "authorization").ok_or(SigError::Missing)?;
    let auth = parse_authorization(&header)?;
    let secret = secret_for(&auth.access_key)
        .ok_or_else(|| SigError::UnknownAccessKey(auth.access_key.clone()))?;
    let amz_date = header_value(request.headers, "x-amz-date").ok_or(SigError::MissingDate)?;
    if amz_date.len() < 8 || !amz_date.starts_with(&auth.date) {
        return Err(SigError::MissingDate);
    }
    let expected = signature(request, &auth, &amz_date, &secret);
    if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(())
    } else {
        Err(SigError::Mismatch)
    }
}

fn header_value(headers: &[(String, String)], name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
        .collect();
    if values.is_empty() {
        None
    } else {
        Some(values.join(","))
    }
}

/// The hex signature AWS would compute for `request`.
pub fn signature(
    request: &SignedRequest<'_>,
    auth: &Authorization,
    amz_date: &str,
    secret: &str,
) -> String {
    let canonical = canonical_request(request, &auth.signed_headers);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
        auth.scope,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    key = hmac(&key, auth.region.as_bytes());
    key = hmac(&key, auth.service.as_bytes());
    key = hmac(&key, b"aws4_request");
    hex::encode(hmac(&key, string_to_sign.as_bytes()))
}

fn canonical_request(request: &SignedRequest<'_>, signed_headers: &[String]) -> String {
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let value = header_value(request.headers, name).unwrap_or_default();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&collapse_spaces(value.trim()));
        canonical_headers.push('\n');
    }
    let payload_hash = header_value(request.headers, "x-amz-content-sha256")
        .filter(|value| value != "UNSIGNED-PAYLOAD" || request.body.is_empty())
        .unwrap_or_else(|| hex::encode(Sha256::digest(request.body)));
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_uri(request.path),
        canonical_query(request.query),
        canonical_headers,
        signed_headers.join(";"),
        payload_hash
    )
}

fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    // Non-S3 services sign the already-encoded path encoded once more.
    path.split('/')
        .map(|segment| uri_encode(segment, true))
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: &str) -> String {
    let mut pairs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        pairs
            .entry(uri_encode(&percent_decode(key), false))
            .or_default()
            .push(uri_encode(&percent_decode(value), false));
    }
    let mut out = Vec::new();
    for (key, mut values) in pairs {
        values.sort();
        for value in values {
            out.push(format!("{key}={value}"));
        }
    }
    out.join("&")
}

fn uri_encode(text: &str, keep_percent: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b'%' if !keep_percent => out.push_str("%25"),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let (Some(high), Some(low)) =
                (hex_digit(bytes[index + 1]), hex_digit(bytes[index + 2]))
        {
            out.push(high * 16 + low);
            index += 3;
            continue;
        }
        out.push(if bytes[index] == b'+' {
            b' '
        } else {
            bytes[index]
        });
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// AWS's published SigV4 test suite case `get-vanilla`.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let headers = headers(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ]);
        let request = SignedRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let lookup = |key: &str| (key == "AKIDEXAMPLE").then(|| SECRET.to_owned());
        assert_eq!(verify(&request, lookup), Ok(()));
    }

    /// AWS's published SigV4 test suite case `get-vanilla-query-order-key-case`.
    #[test]
    fn aws_test_suite_query_order() {
        let headers = headers(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ]);
        let request = SignedRequest {
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &headers,
            body: b"",
        };
        let lookup = |_: &str| Some(SECRET.to_owned());
        assert_eq!(verify(&request, lookup), Ok(()));
    }

    #[test]
    fn wrong_secret_body_or_key_is_rejected() {
        let headers = headers(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ]);
        let request = SignedRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        assert_eq!(
            verify(&request, |_| Some("not-the-secret".into())),
            Err(SigError::Mismatch)
        );
        assert_eq!(
            verify(&request, |_| None),
            Err(SigError::UnknownAccessKey("AKIDEXAMPLE".into()))
        );
        let tampered = SignedRequest {
            body: b"{}",
            ..request
        };
        assert_eq!(
            verify(&tampered, |_| Some(SECRET.into())),
            Err(SigError::Mismatch)
        );
        let unsigned = SignedRequest {
            headers: &[],
            ..tampered
        };
        assert_eq!(verify(&unsigned, |_| None), Err(SigError::Missing));
    }
}
