//! Dialling the server over TCP, within the connect timeout: the address
//! resolved, the TLS server name kept for verification (through a tunnel the
//! host dialled is 127.0.0.1, the name the endpoint's).

use std::net::IpAddr;

use anyhow::{anyhow, bail, Context, Result};

use super::options::ConnectOptions;

/// Dials the server: the address given, or, with a TLS server name, the host
/// resolved and the name kept for verification. Returns the socket and the
/// name TLS checks the certificate against.
pub(super) async fn dial(opts: &ConnectOptions) -> Result<(tokio::net::TcpStream, String)> {
    if opts.host.starts_with('/') {
        bail!("{} is a Unix socket directory; rlsctl connects over TCP (through the tunnel: 127.0.0.1)", opts.host);
    }
    let address = resolve(&opts.host, opts.port).await?;
    let stream = tokio::time::timeout(
        opts.connect_timeout,
        tokio::net::TcpStream::connect((address, opts.port)),
    )
    .await
    .map_err(|_| anyhow!("timed out after {:?}", opts.connect_timeout))?
    .map_err(|e| {
        // On this machine, nothing listening is most often a tunnel not started.
        if e.kind() == std::io::ErrorKind::ConnectionRefused && address.is_loopback() {
            anyhow!("{e}: nothing listens on {}:{} (start the tunnel with `rlsctl tunnel`, or add --via-ssm or --via-ssh)", opts.host, opts.port)
        } else {
            anyhow::Error::new(e)
        }
    })?;
    stream.set_nodelay(true)?;
    let name = opts
        .tls_server_name
        .clone()
        .unwrap_or_else(|| opts.host.clone());
    Ok((stream, name))
}

async fn resolve(host: &str, port: u16) -> Result<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .map(|addr| addr.ip())
        .ok_or_else(|| anyhow!("{host} resolves to no address"))
}
