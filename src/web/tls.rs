//! The console's TLS: the configured certificate and key, or a self-signed certificate made on
//! first start (rcgen) and kept beside the database so browsers see the same one after a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// The certificate and key files in use: the configured ones, or `web-cert.pem`/`web-key.pem`
/// beside the database, generated when missing.
pub fn files(config: &Config) -> Result<(PathBuf, PathBuf)> {
    if let (Some(cert), Some(key)) = (&config.web.cert, &config.web.key) {
        return Ok((cert.clone(), key.clone()));
    }
    let dir = config.store.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (cert, key) = (dir.join("web-cert.pem"), dir.join("web-key.pem"));
    if !cert.exists() || !key.exists() {
        generate(&cert, &key)?;
    }
    Ok((cert, key))
}

fn generate(cert: &Path, key: &Path) -> Result<()> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if !host.is_empty() {
        names.push(host.clone());
        names.push(format!("{host}.local"));
    }
    let made = rcgen::generate_simple_self_signed(names).context("cannot make a self-signed certificate")?;
    write_private(key, made.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(cert, made.cert.pem())
        .with_context(|| format!("cannot write the console certificate {}", cert.display()))?;
    log::info!(
        "web: made a self-signed certificate {} (browsers will ask to trust it; set web.cert/web.key for your own)",
        cert.display()
    );
    Ok(())
}

/// Writes a file only its owner can read (the private key).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write the console key {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

/// The rustls server config (ring provider) from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read web.cert {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("web.cert {} is not a PEM certificate", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("web.key {} is not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("rustls has no safe protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the console certificate and key do not match (web.cert, web.key)")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.store.path = dir.path().join("f.db");
        let (cert, key) = files(&config).unwrap();
        let first = std::fs::read(&cert).unwrap();
        server_config(&cert, &key).unwrap();
        let (cert2, _) = files(&config).unwrap();
        assert_eq!(std::fs::read(cert2).unwrap(), first, "kept across restarts");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(&key, "junk").unwrap();
        assert!(format!("{:#}", server_config(&cert, &key).unwrap_err()).contains("web.key"));
    }
}
