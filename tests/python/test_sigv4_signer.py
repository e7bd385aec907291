"""The test signer itself reproduces AWS's published chunked-upload example,
so failures elsewhere are the daemon's, not the signer's."""

import hashlib

import sigv4

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_chunk_signatures_match_the_aws_example():
    key = sigv4.signing_key(SECRET, "20130524")
    scope = "20130524/us-east-1/s3/aws4_request"
    seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    first = sigv4.chunk_signature(key, "20130524T000000Z", scope, seed, b"a" * 65536)
    assert first == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    second = sigv4.chunk_signature(key, "20130524T000000Z", scope, first, b"a" * 1024)
    assert second == "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    last = sigv4.chunk_signature(key, "20130524T000000Z", scope, second, b"")
    assert last == "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"


def test_header_signature_matches_the_aws_get_object_example():
    headers, signature = sigv4.sign_headers(
        "GET", "/test.txt", [], {"Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9"},
        hashlib.sha256(b"").hexdigest(), "AKIAIOSFODNN7EXAMPLE", SECRET, "20130524T000000Z")
    assert signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
