//! `cidr` operands: IPv4 and IPv6 networks; event values match when they are addresses inside.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Network {
    v4: bool,
    /// The address with host bits cleared, as a 128-bit number (IPv4 in the low 32 bits).
    base: u128,
    prefix: u32,
}

fn to_bits(addr: IpAddr) -> (bool, u128) {
    match addr {
        IpAddr::V4(a) => (true, u128::from(u32::from(a))),
        IpAddr::V6(a) => (false, u128::from(a)),
    }
}

impl Network {
    pub(crate) fn parse(text: &str) -> Result<Network, String> {
        let Some((addr, prefix)) = text.split_once('/') else {
            return Err(format!("Malformed CIDR, one '/' required: {text}"));
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("Nonstandard IP address: {addr}"))?;
        let (v4, bits) = to_bits(addr);
        let width = if v4 { 32 } else { 128 };
        let prefix: u32 = match prefix.parse() {
            Ok(p) if p <= width && !prefix.starts_with('+') => p,
            _ => {
                return Err(format!(
                    "Malformed CIDR, mask bits must be between 0 and {width}: {text}"
                ));
            }
        };
        Ok(Network {
            v4,
            base: bits & mask(width, prefix),
            prefix,
        })
    }

    pub(crate) fn contains(&self, value: &str) -> bool {
        let Ok(addr) = value.parse::<IpAddr>() else {
            return false;
        };
        let (v4, bits) = to_bits(addr);
        let width = if v4 { 32 } else { 128 };
        v4 == self.v4 && bits & mask(width, self.prefix) == self.base
    }
}

/// The top `prefix` bits of a `width`-bit address.
fn mask(width: u32, prefix: u32) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    // At most 127 host bits here, since the prefix is at least 1.
    let host = (1u128 << (width - prefix)) - 1;
    all & !host
}

#[cfg(test)]
mod tests {
    use super::Network;

    #[test]
    fn networks_contain_their_addresses() {
        let n = Network::parse("10.0.0.0/24").unwrap();
        assert!(n.contains("10.0.0.255"));
        assert!(!n.contains("10.0.1.0"));
        assert!(!n.contains("::1"));
        let all = Network::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("255.255.255.255"));
        let host = Network::parse("10.0.0.7/32").unwrap();
        assert!(host.contains("10.0.0.7") && !host.contains("10.0.0.8"));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:DB8:0:1::5"));
        assert!(!v6.contains("2001:db9::"));
        let v6host = Network::parse("::1/128").unwrap();
        assert!(v6host.contains("::1") && !v6host.contains("::2"));
        assert!(Network::parse("10.0.0.0").is_err());
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("10.0.0/8").is_err());
    }
}
