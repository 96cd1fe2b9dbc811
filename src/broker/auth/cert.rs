//! The common name in a client certificate's subject, which `--use-identity-as-username`
//! makes the client's username. rustls has verified the certificate before this reads
//! it; this only walks its DER to the subject (RFC 5280, 4.1) and takes the first CN
//! (OID 2.5.4.3), as mosquitto does. Anything unexpected reads as no name.

/// DER's tags that matter here.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// `[0]`, the explicit version of a v2 or v3 certificate.
const VERSION: u8 = 0xA0;
/// 2.5.4.3, the common name.
const CN: &[u8] = &[0x55, 0x04, 0x03];

/// The first common name of the certificate's subject, if it has one in a string type.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (cert, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(cert, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        tbs = any(tbs)?.1;
    }
    // serialNumber, signature, issuer, validity; then the subject.
    for _ in 0..4 {
        tbs = any(tbs)?.1;
    }
    let (mut subject, _) = element(tbs, SEQUENCE)?;
    while !subject.is_empty() {
        let (mut rdn, rest) = element(subject, SET)?;
        subject = rest;
        while !rdn.is_empty() {
            let (attr, rest) = element(rdn, SEQUENCE)?;
            rdn = rest;
            let (oid, value) = element(attr, OID)?;
            if oid == CN {
                // A name with a control character in it is no name (it would be a
                // username, and go into logs and patterns).
                return text(value).filter(|n| !n.is_empty() && !n.chars().any(char::is_control));
            }
        }
    }
    None
}

/// A string value: UTF8String, PrintableString, IA5String, T61String (read as Latin-1),
/// or BMPString (UTF-16).
fn text(value: &[u8]) -> Option<String> {
    let (tag, body, _) = tlv(value)?;
    match tag {
        0x0C | 0x13 | 0x16 => String::from_utf8(body.to_vec()).ok(),
        0x14 => Some(body.iter().map(|&b| char::from(b)).collect()),
        0x1E if body.len() % 2 == 0 => {
            let units = body.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// An element with tag `want`: its contents, and what follows it.
fn element(der: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (tag, body, rest) = tlv(der)?;
    (tag == want).then_some((body, rest))
}

/// Any element: its contents, and what follows it.
fn any(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, body, rest) = tlv(der)?;
    Some((body, rest))
}

/// A tag (one byte: certificates use no others here), a length (DER's short or long
/// form, up to four bytes) and the contents; None when the bytes end too soon.
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        n if n < 0x80 => (usize::from(n), rest),
        0x81..=0x84 => {
            let k = usize::from(first & 0x7F);
            let bytes = rest.get(..k)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, &rest[k..])
        }
        _ => return None,
    };
    let body = rest.get(..len)?;
    Some((tag, body, &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_for(subject: rcgen::DistinguishedName) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.distinguished_name = subject;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_subjects_common_name_is_read() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Example");
        dn.push(rcgen::DnType::CommonName, "alice é");
        assert_eq!(common_name(&cert_for(dn)).as_deref(), Some("alice é"));
    }

    #[test]
    fn a_subject_without_one_has_none() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Example");
        assert_eq!(common_name(&cert_for(dn)), None);
    }

    #[test]
    fn bytes_that_are_no_certificate_read_as_no_name() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "bob");
        let der = cert_for(dn);
        for cut in 0..der.len() {
            assert_eq!(common_name(&der[..cut]), None, "cut at {cut}");
        }
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x80],
        ] {
            assert_eq!(common_name(bad), None);
        }
    }
}
