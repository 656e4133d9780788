//! Reading flag values the way the Go components read them, and rendering errors the way Go
//! renders them.
//!
//! The model's flag schema types most values already (`Cidrs`, `Bool`, …). A flag that reaches
//! the control plane as free text (a flag the schema does not type, or a schema not yet filled
//! in) is parsed here with the same rules the component would apply, so that the outcome and
//! the message do not depend on how the scenario spelled the value.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_model::flags::{ComponentFlags, Flag, FlagValue};

/// The flags of one component, or none when the scenario did not configure it.
pub(crate) type Flags<'a> = Option<&'a ComponentFlags>;

pub(crate) fn get<'a>(flags: Flags<'a>, name: &str) -> Option<&'a Flag> {
    flags.and_then(|f| f.get(name))
}

/// Go's `%q` for a string (`strconv.Quote`): one implementation serves the Service validation
/// messages and the flag errors.
pub(crate) use crate::service::field::go_quote;

/// Go's `%#v` for a `[]string`: `[]string{"a", "b"}`, which is how apimachinery's field errors
/// print a string slice that was rejected.
pub(crate) fn go_string_slice(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `utilerrors.NewAggregate(errs).Error()`: one error prints as itself, several as
/// `[a, b]`; identical messages are reported once (the aggregate de-duplicates them).
pub(crate) fn aggregate(errs: &[String]) -> Option<String> {
    let mut seen: Vec<&String> = Vec::new();
    for e in errs {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.len() {
        0 => None,
        1 => Some(seen[0].clone()),
        _ => Some(format!(
            "[{}]",
            seen.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `strconv.ParseBool`.
pub(crate) fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The error pflag returns when a flag's value does not parse:
/// `invalid argument "x" for "--name" flag: <detail>` (`spf13/pflag` `FlagSet.set`).
pub(crate) fn pflag_invalid(raw: &str, name: &str, detail: &str) -> String {
    format!(
        "invalid argument {} for {} flag: {}",
        go_quote(raw),
        go_quote(&format!("--{name}")),
        detail
    )
}

/// A boolean flag, or the pflag error its text produces.
pub(crate) fn bool_flag(flags: Flags<'_>, name: &str) -> Result<Option<bool>, String> {
    let Some(flag) = get(flags, name) else {
        return Ok(None);
    };
    match &flag.value {
        FlagValue::Bool(b) => Ok(Some(*b)),
        FlagValue::Str(s) | FlagValue::Enum(s) => {
            go_parse_bool(s.trim()).map(Some).ok_or_else(|| {
                pflag_invalid(
                    &flag.raw,
                    name,
                    &format!("strconv.ParseBool: parsing {}: invalid syntax", go_quote(s)),
                )
            })
        }
        _ => Err(pflag_invalid(
            &flag.raw,
            name,
            &format!(
                "strconv.ParseBool: parsing {}: invalid syntax",
                go_quote(&flag.raw)
            ),
        )),
    }
}

/// An integer flag, or the pflag error its text produces.
pub(crate) fn int_flag(flags: Flags<'_>, name: &str) -> Result<Option<i64>, String> {
    let Some(flag) = get(flags, name) else {
        return Ok(None);
    };
    match &flag.value {
        FlagValue::Int(i) => Ok(Some(*i)),
        FlagValue::Str(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
            pflag_invalid(
                &flag.raw,
                name,
                &format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(s)),
            )
        }),
        _ => Err(pflag_invalid(
            &flag.raw,
            name,
            &format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                go_quote(&flag.raw)
            ),
        )),
    }
}

/// A free-text or enum flag, as written.
pub(crate) fn str_flag<'a>(flags: Flags<'a>, name: &str) -> Option<&'a str> {
    let flag = get(flags, name)?;
    match &flag.value {
        FlagValue::Str(s) | FlagValue::Enum(s) => Some(s.as_str()),
        _ => Some(flag.raw.as_str()),
    }
}

/// A comma-separated list flag, as the component splits it. An empty value is an empty list.
pub(crate) fn list_flag(flags: Flags<'_>, name: &str) -> Option<Vec<String>> {
    let flag = get(flags, name)?;
    Some(match &flag.value {
        FlagValue::StrList(v) => v.clone(),
        FlagValue::Cidrs(c) => c.iter().map(|n| n.to_string()).collect(),
        _ => split_list(&flag.raw),
    })
}

fn split_list(raw: &str) -> Vec<String> {
    if raw.trim().is_empty() {
        return Vec::new();
    }
    raw.split(',').map(|s| s.trim().to_string()).collect()
}

/// One entry of a comma-separated CIDR flag: parsed (kept as written, host bits and all), or
/// the text that did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CidrEntry {
    Net(IpNet),
    Bad(String),
}

/// The entries of a CIDR-list flag, in flag order, or `None` when the flag is not set. The
/// empty string is an empty list (the components treat `--flag=""` as unset).
pub(crate) fn cidr_entries(flags: Flags<'_>, name: &str) -> Option<Vec<CidrEntry>> {
    let flag = get(flags, name)?;
    Some(match &flag.value {
        FlagValue::Cidrs(c) => c.iter().copied().map(CidrEntry::Net).collect(),
        _ => split_list(&flag.raw)
            .into_iter()
            .map(|s| parse_cidr_sloppy(&s).map_or(CidrEntry::Bad(s), CidrEntry::Net))
            .collect(),
    })
}

/// `netutils.ParseCIDRSloppy` without the masking: an address, `/`, a prefix length. Leading
/// zeros in IPv4 octets are accepted, as the sloppy parser does.
pub(crate) fn parse_cidr_sloppy(s: &str) -> Option<IpNet> {
    let (addr, len) = s.split_once('/')?;
    let ip = parse_ip_sloppy(addr)?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    IpNet::new(ip, len).ok()
}

/// `netutils.ParseIPSloppy`: like `net.ParseIP`, but IPv4 octets may carry leading zeros
/// (read as decimal).
pub(crate) fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if s.contains(':') {
        return None;
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    Some(IpAddr::from(octets))
}

/// A CIDR masked to its network, as `net.ParseCIDR` returns it (`10.96.0.1/12` →
/// `10.96.0.0/12`).
pub(crate) fn masked(net: IpNet) -> IpNet {
    net.trunc()
}

/// `--feature-gates` as a map, or the error `featureGate.Set` returns for malformed text.
pub(crate) fn gates_flag(flags: Flags<'_>) -> Result<Option<BTreeMap<String, bool>>, String> {
    let Some(flag) = get(flags, "feature-gates") else {
        return Ok(None);
    };
    if let FlagValue::FeatureGates(g) = &flag.value {
        return Ok(Some(g.clone()));
    }
    // component-base/featuregate/feature_gate.go: featureGate.Set.
    let mut set = BTreeMap::new();
    for s in flag.raw.split(',') {
        if s.is_empty() {
            continue;
        }
        let (k, v) = match s.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => return Err(format!("missing bool value for {}", s.trim())),
        };
        let b = go_parse_bool(v).ok_or_else(|| {
            format!(
                "invalid value of {k}={v}, err: strconv.ParseBool: parsing {}: invalid syntax",
                go_quote(v)
            )
        })?;
        set.insert(k.to_string(), b);
    }
    Ok(Some(set))
}

/// `--service-node-port-range` and friends: `low-high` or `low+size` or a single port
/// (`utilnet.ParsePortRange`), as `(low, high)`.
pub(crate) fn port_range_flag(flags: Flags<'_>, name: &str) -> Result<Option<(u16, u16)>, String> {
    let Some(flag) = get(flags, name) else {
        return Ok(None);
    };
    if let FlagValue::PortRange(lo, hi) = flag.value {
        return Ok(Some((lo, hi)));
    }
    parse_port_range(&flag.raw).map(Some).ok_or_else(|| {
        pflag_invalid(
            &flag.raw,
            name,
            &format!("unable to parse port range: {}", flag.raw),
        )
    })
}

fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let s = s.trim();
    let parse = |p: &str| p.trim().parse::<u16>().ok();
    if let Some((lo, hi)) = s.split_once('-') {
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        return (lo <= hi).then_some((lo, hi));
    }
    if let Some((lo, size)) = s.split_once('+') {
        let (lo, size) = (parse(lo)?, parse(size)?);
        let hi = u32::from(lo) + u32::from(size);
        return (size > 0 && hi <= 65536).then(|| (lo, (hi - 1) as u16));
    }
    let p = parse(s)?;
    Some((p, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_renderings() {
        assert_eq!(go_quote("10.0.0.0/8"), "\"10.0.0.0/8\"");
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(
            go_string_slice(&["10.0.0.0/8".into(), "fd00::/48".into()]),
            "[]string{\"10.0.0.0/8\", \"fd00::/48\"}"
        );
        assert_eq!(aggregate(&[]), None);
        assert_eq!(aggregate(&["a".into()]), Some("a".into()));
        assert_eq!(
            aggregate(&["a".into(), "b".into(), "a".into()]),
            Some("[a, b]".into())
        );
    }

    #[test]
    fn sloppy_parsing() {
        let table: &[(&str, Option<&str>)] = &[
            ("10.96.0.0/12", Some("10.96.0.0/12")),
            ("010.096.000.001/12", Some("10.96.0.1/12")),
            ("fc00::4:0:0/94", Some("fc00::4:0:0/94")),
            ("10.0.0.0/33", None),
            ("10.0.0.0", None),
            ("", None),
            ("fd00::/129", None),
        ];
        for (input, want) in table {
            let got = parse_cidr_sloppy(input).map(|n| n.to_string());
            assert_eq!(got.as_deref(), *want, "{input}");
        }
        assert_eq!(
            masked("10.96.0.1/12".parse().unwrap()).to_string(),
            "10.96.0.0/12"
        );
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("30000-32767"), Some((30000, 32767)));
        assert_eq!(parse_port_range("30000+2768"), Some((30000, 32767)));
        assert_eq!(parse_port_range("8080"), Some((8080, 8080)));
        assert_eq!(parse_port_range("32767-30000"), None);
        assert_eq!(parse_port_range("x"), None);
    }
}
