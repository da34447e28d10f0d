//! Small value parsers and name rules shared by both front ends, so an ha.d
//! directory and a TOML file accept exactly the same values. Errors are
//! complete messages ("expected ..., found ...") without file or field.
use std::net::{IpAddr, Ipv4Addr};

pub(crate) fn ip(s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| format!("expected an IP address (names are not resolved), found {s:?}"))
}

pub(crate) fn default_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 24 } else { 64 }
}

/// A prefix length (`24`) or, for IPv4, a dotted netmask (`255.255.255.0`).
pub(crate) fn prefix_for(addr: IpAddr, s: &str) -> Result<u8, String> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if let Ok(bits) = s.parse::<u8>() {
        if bits <= max {
            return Ok(bits);
        }
    } else if let (true, Ok(mask)) = (addr.is_ipv4(), s.parse::<Ipv4Addr>()) {
        let bits = u32::from(mask);
        if bits.leading_ones() + bits.trailing_zeros() == 32 {
            return Ok(bits.leading_ones() as u8);
        }
        return Err(format!("netmask {s:?} is not contiguous"));
    }
    Err(format!("expected a prefix length 0-{max}, found {s:?}"))
}

/// `192.168.32.21/24`, or a bare address (default prefix /24 or /64).
pub(crate) fn ip_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    match s.split_once('/') {
        Some((a, p)) => {
            let addr = ip(a)?;
            Ok((addr, prefix_for(addr, p)?))
        }
        None => {
            let addr = ip(s)?;
            Ok((addr, default_prefix(addr)))
        }
    }
}

/// `00:1E:68:1E:99:5E` (also `-` separated). A virtual MAC must be a unicast,
/// non-zero address: a multicast source MAC would be dropped by switches.
pub(crate) fn mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("expected a MAC address such as 00:1E:68:1E:99:5E, found {s:?}");
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut out = [0u8; 6];
    for (byte, part) in out.iter_mut().zip(&parts) {
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if out[0] & 1 == 1 {
        return Err(format!(
            "{s} is a multicast MAC address; a virtual MAC must be unicast"
        ));
    }
    if out == [0; 6] {
        return Err("the all-zero MAC address cannot be used".to_string());
    }
    Ok(out)
}

/// Linux interface names: 1-15 bytes, no '/', ':' or blanks (IFNAMSIZ).
pub(crate) fn iface(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected an interface name (1-15 characters, no '/' or ':'), found {s:?}"
        ))
    }
}

/// Host names as `hostname(1)` sets them: dot-separated RFC 1123 labels,
/// at most 64 bytes (HOST_NAME_MAX).
pub(crate) fn hostname(s: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !s.is_empty() && s.len() <= 64 && s.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "expected a host name (letters, digits, '-', dots; at most 64 characters), found {s:?}"
        ))
    }
}

/// Node and cluster names end up in sockets paths, ids and messages: keep
/// them to host-name characters.
pub(crate) fn name(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a {what} name (letters, digits, '-', '_', '.'; at most 64), found {s:?}"
        ))
    }
}

/// Script names are looked up in directories: no paths, no `..`.
pub(crate) fn script_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains(char::is_whitespace) {
        Err(format!(
            "expected a script name (no '/'; it is looked up in the script directories), found {s:?}"
        ))
    } else {
        Ok(())
    }
}

/// OCF parameter names become OCF_RESKEY_<name> environment variables.
pub(crate) fn env_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a parameter name (letters, digits, '_'), found {s:?}"
        ))
    }
}

/// Heartbeat's cl_str_to_boolean().
pub(crate) fn boolean(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Quotes a word for `sh -c` unless it is plainly safe.
pub(crate) fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@+,%".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(prefix_for(v4, "24"), Ok(24));
        assert_eq!(prefix_for(v4, "255.255.255.0"), Ok(24));
        assert_eq!(prefix_for(v4, "255.255.255.255"), Ok(32));
        assert!(prefix_for(v4, "33").is_err());
        assert!(
            prefix_for(v4, "255.0.255.0")
                .unwrap_err()
                .contains("contiguous")
        );
        assert_eq!(prefix_for(v6, "64"), Ok(64));
        assert!(prefix_for(v6, "255.255.255.0").is_err());
        assert_eq!(
            ip_prefix("192.168.32.21"),
            Ok((IpAddr::from([192, 168, 32, 21]), 24))
        );
        assert_eq!(
            ip_prefix("fd00::5/80"),
            Ok(("fd00::5".parse().unwrap(), 80))
        );
    }

    #[test]
    fn macs() {
        assert_eq!(
            mac("00:1E:68:1E:99:5E"),
            Ok([0x00, 0x1e, 0x68, 0x1e, 0x99, 0x5e])
        );
        assert_eq!(
            mac("00-1e-68-1e-88-5e"),
            Ok([0x00, 0x1e, 0x68, 0x1e, 0x88, 0x5e])
        );
        assert!(mac("01:00:5E:00:00:01").unwrap_err().contains("multicast"));
        assert!(mac("00:00:00:00:00:00").is_err());
        assert!(mac("00:1E:68:1E:99").is_err());
        assert!(mac("0:1E:68:1E:99:5E").is_err());
    }

    #[test]
    fn names() {
        assert!(iface("eth0").is_ok());
        assert!(iface("eth0:1").is_err());
        assert!(iface("a-very-long-interface").is_err());
        assert!(hostname("nodevir2").is_ok());
        assert!(hostname("node_vir").is_err());
        assert!(name("node", "node-0.lab").is_ok());
        assert!(name("node", "node 0").is_err());
        assert!(script_name("../x").is_err());
        assert!(env_name("cidr_netmask").is_ok());
        assert!(env_name("1x").is_err());
    }

    #[test]
    fn booleans_and_quoting() {
        assert_eq!(boolean("ON"), Some(true));
        assert_eq!(boolean("n"), Some(false));
        assert_eq!(boolean("legacy"), None);
        assert_eq!(shell_quote("baytech"), "baytech");
        assert_eq!(shell_quote("a b'c"), r"'a b'\''c'");
    }
}
