//! Integration tests of `registry-client`, in one binary: the protocol against a scripted
//! in-test HTTP server (token and basic auth, retries, resumed blobs, hostile answers), and
//! the configuration rules (endpoints, credentials, HMAC), and TLS with `certs.d` against a
//! real registry.

mod config;
mod protocol;
mod server;
mod tls;
