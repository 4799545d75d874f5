//! IP network functions: `cidrhost cidrnetmask cidrsubnet cidrsubnets`,
//! over IPv4 and IPv6 prefixes parsed by `ipnet`.
//!
//! Addresses are computed as 128-bit integers, so host and network numbers
//! out of range are errors, never wrap-arounds.

use super::Args;
use crate::value::Value;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn prefix(f: &Args, i: usize) -> Result<IpNet, String> {
    let s = f.str(i)?;
    s.parse::<IpNet>().map_err(|_| f.error(format!("invalid CIDR expression: invalid CIDR address: {s}"))).map(|n| n.trunc())
}

fn bits(net: &IpNet) -> u32 {
    match net {
        IpNet::V4(_) => 32,
        IpNet::V6(_) => 128,
    }
}

fn to_int(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_int(net: &IpNet, n: u128) -> IpAddr {
    match net {
        IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
        IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

pub(super) fn cidrhost(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let net = prefix(f, 0)?;
    let host = f.integer(1)?;
    let host_bits = bits(&net) - u32::from(net.prefix_len());
    let size: u128 = if host_bits >= 128 { u128::MAX } else { 1u128 << host_bits };
    let offset = if host < 0 { size.checked_sub(u128::from(host.unsigned_abs())) } else { Some(host as u128).filter(|h| *h < size) };
    let Some(offset) = offset.filter(|o| *o < size) else {
        return Err(f.error(format!("prefix of {} bits cannot accommodate a host numbered {host}", net.prefix_len())));
    };
    Ok(Value::String(from_int(&net, to_int(net.network()) + offset).to_string()))
}

pub(super) fn cidrnetmask(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    match prefix(f, 0)? {
        IpNet::V4(n) => Ok(Value::String(n.netmask().to_string())),
        IpNet::V6(_) => Err(f.error("only IPv4 networks are supported")),
    }
}

fn subnet(f: &Args, net: &IpNet, newbits: i64, num: i64) -> Result<IpNet, String> {
    let total = bits(net);
    let len = i64::from(net.prefix_len()) + newbits;
    if newbits < 0 {
        return Err(f.error("newbits must be a non-negative number"));
    }
    if len > i64::from(total) {
        return Err(f.error(format!("insufficient address space to extend prefix of {} by {newbits}", net.prefix_len())));
    }
    let max = if newbits >= 64 { u128::MAX } else { 1u128 << newbits };
    if num < 0 || num as u128 >= max {
        return Err(f.error(format!("prefix extension of {newbits} does not accommodate a subnet numbered {num}")));
    }
    let shift = total - len as u32;
    let base = to_int(net.network()) | if shift >= 128 { 0 } else { (num as u128) << shift };
    IpNet::new(from_int(net, base), len as u8).map_err(|e| f.error(e))
}

pub(super) fn cidrsubnet(f: &Args) -> Result<Value, String> {
    f.arity(3, 3)?;
    let net = prefix(f, 0)?;
    Ok(Value::String(subnet(f, &net, f.integer(1)?, f.integer(2)?)?.to_string()))
}

/// `cidrsubnets(prefix, newbits…)`: consecutive subnets, each aligned to
/// its own size, as Terraform allocates them.
pub(super) fn cidrsubnets(f: &Args) -> Result<Value, String> {
    f.at_least(1)?;
    let net = prefix(f, 0)?;
    let total = bits(&net);
    let mut next = to_int(net.network());
    let end =
        next + if total - u32::from(net.prefix_len()) >= 128 { u128::MAX } else { (1u128 << (total - u32::from(net.prefix_len()))) - 1 };
    let mut out = Vec::new();
    for i in 1..f.len() {
        let newbits = f.integer(i)?;
        let len = i64::from(net.prefix_len()) + newbits;
        if newbits < 1 || len > i64::from(total) {
            return Err(f.error(format!(
                "would extend prefix to {len} bits, which is too long for an IPv{} address",
                if total == 32 { 4 } else { 6 }
            )));
        }
        let size = 1u128 << (total - len as u32);
        let start = next.div_ceil(size) * size;
        if start > end || start + (size - 1) > end {
            return Err(f.error(format!(
                "not enough remaining address space for a subnet with a prefix of {len} bits after {}",
                out.last().map(|v: &Value| v.to_string()).unwrap_or_default()
            )));
        }
        out.push(Value::String(IpNet::new(from_int(&net, start), len as u8).map_err(|e| f.error(e))?.to_string()));
        next = start + size;
    }
    Ok(Value::List(out))
}
