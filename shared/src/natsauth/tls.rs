//! The hub's own certificate authority: it signs the certificate of NATS's client port (and of
//! the gateway's front door), and a host verifies the hub by the CA's SHA-256 fingerprint, which
//! the enrolment command carries. No public CA is needed and nothing is trusted on first use.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

/// PEM texts of a CA or of a certificate and its key.
#[derive(Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pem").finish_non_exhaustive()
    }
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "FLick hub CA");
    params.distinguished_name = name;
    Ok(params)
}

/// A new CA.
pub fn new_ca() -> Result<Pem, rcgen::Error> {
    let key = KeyPair::generate()?;
    let cert = ca_params()?.self_signed(&key)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A server certificate for `names` (host names and addresses), signed by `ca`.
pub fn server_certificate(ca: &Pem, names: &[String]) -> Result<Pem, rcgen::Error> {
    let ca_key = KeyPair::from_pem(&ca.key)?;
    // The issuer is the CA's name and key: the same CA as the stored certificate.
    let issuer = ca_params()?.self_signed(&ca_key)?;
    let mut params = CertificateParams::new(names.to_vec())?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        names.first().map_or("flick", String::as_str),
    );
    params.distinguished_name = name;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer, &ca_key)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// `sha256:<hex>` of a PEM certificate's DER bytes: what a host checks the hub's CA against.
pub fn fingerprint(cert_pem: &str) -> Option<String> {
    let der = pem_der(cert_pem)?;
    Some(format!("sha256:{}", hex::encode(Sha256::digest(der))))
}

/// The DER bytes of the first certificate of a PEM text.
pub fn pem_der(cert_pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = cert_pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_certificate_is_signed_by_the_ca_and_the_fingerprint_is_stable() {
        let ca = new_ca().expect("ca");
        let server =
            server_certificate(&ca, &["localhost".into(), "127.0.0.1".into()]).expect("cert");
        assert!(server.cert.contains("BEGIN CERTIFICATE"));
        let print = fingerprint(&ca.cert).expect("fingerprint");
        assert!(print.starts_with("sha256:") && print.len() == 7 + 64);
        assert_eq!(fingerprint(&ca.cert), Some(print));
        assert_ne!(fingerprint(&server.cert), fingerprint(&ca.cert));
    }
}
