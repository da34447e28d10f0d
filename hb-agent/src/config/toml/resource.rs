//! `[[group.resource]]` tables -> ResourceSpec. One flat table serves every
//! `type`; keys that do not belong to the type are errors at their line.
use std::net::Ipv4Addr;
use std::ops::Range;
use std::time::Duration;

use ::toml::Spanned;

use super::build::Build;
use super::schema::ResourceT;
use crate::config::values;
use crate::model::{HostnameSpec, IpSpec, MacMode, MacSpec, ResourceSpec, ScriptKind, ScriptSpec};

impl Build<'_> {
    pub(super) fn missing(&mut self, r: &ResourceT, field: &str) {
        let kind = r.kind.get_ref().clone();
        self.error(
            &r.kind,
            &format!("group.resource.{field}"),
            format!("type = \"{kind}\" needs `{field}`"),
        );
    }

    pub(super) fn resource(
        &mut self,
        r: &ResourceT,
        default_timeout: Duration,
    ) -> Option<ResourceSpec> {
        let kind = r.kind.get_ref().as_str();
        let allowed: &[&str] = match kind {
            "ip" => &["address", "iface", "broadcast", "label"],
            "mac" => &["iface", "mac", "mode", "child", "address", "gateway"],
            "hostname" => &["name"],
            "script" => &["name", "args", "timeout"],
            "lsb" => &["name", "timeout"],
            "ocf" => &["name", "provider", "params", "timeout"],
            other => {
                let msg = format!(
                    "expected \"ip\", \"mac\", \"hostname\", \"script\", \"lsb\" or \"ocf\", found {other:?}"
                );
                self.error(&r.kind, "group.resource.type", msg);
                return None;
            }
        };
        let errors_before = self.diags.iter().filter(|d| d.is_error()).count();
        for (field, span) in present_fields(r) {
            if !allowed.contains(&field) {
                let msg = format!("does not apply to type = \"{kind}\"");
                let d = self
                    .spot(span)
                    .error(&format!("group.resource.{field}"), msg);
                self.diags.push(d);
            }
        }
        if let Some(t) = &r.timeout
            && t.get_ref().0.is_zero()
        {
            self.error(t, "group.resource.timeout", "must be greater than zero");
        }
        let spec = match kind {
            "ip" => self.ip_resource(r),
            "mac" => self.mac_resource(r),
            "hostname" => match &r.name {
                Some(name) => self
                    .parse(name, "group.resource.name", values::hostname)
                    .map(|()| {
                        ResourceSpec::Hostname(HostnameSpec {
                            name: name.get_ref().clone(),
                        })
                    }),
                None => {
                    self.missing(r, "name");
                    None
                }
            },
            _ => self.script_resource(r, default_timeout),
        };
        let errors_now = self.diags.iter().filter(|d| d.is_error()).count();
        spec.filter(|_| errors_now == errors_before)
    }

    pub(super) fn ip_resource(&mut self, r: &ResourceT) -> Option<ResourceSpec> {
        let Some(address) = &r.address else {
            self.missing(r, "address");
            return None;
        };
        let (addr, prefix) = self.parse(address, "group.resource.address", values::ip_prefix)?;
        let iface = r.iface.as_ref().and_then(|i| {
            self.parse(i, "group.resource.iface", values::iface)
                .map(|()| i.get_ref().clone())
        });
        let broadcast = match &r.broadcast {
            Some(b) if addr.is_ipv4() => self.parse(b, "group.resource.broadcast", |s| {
                s.parse::<Ipv4Addr>()
                    .map_err(|_| format!("expected an IPv4 broadcast address, found {s:?}"))
            }),
            Some(b) => {
                self.error(
                    b,
                    "group.resource.broadcast",
                    "an IPv6 address has no broadcast address",
                );
                None
            }
            None => None,
        };
        let label = r.label.as_ref().map(|l| l.get_ref().clone());
        Some(ResourceSpec::IpAddr(IpSpec {
            addr,
            prefix,
            route_prefix: !address.get_ref().contains('/'),
            iface,
            broadcast,
            label,
        }))
    }

    pub(super) fn mac_resource(&mut self, r: &ResourceT) -> Option<ResourceSpec> {
        let iface = match &r.iface {
            Some(i) => self
                .parse(i, "group.resource.iface", values::iface)
                .map(|()| i.get_ref().clone()),
            None => {
                self.missing(r, "iface");
                None
            }
        };
        let mac = match &r.mac {
            Some(m) => self.parse(m, "group.resource.mac", values::mac),
            None => {
                self.missing(r, "mac");
                None
            }
        };
        let mut mode = match &r.mode {
            Some(m) => self.parse(m, "group.resource.mode", |s| match s {
                "replace" => Ok(MacMode::Replace),
                "macvlan" => Ok(MacMode::Macvlan { child: None }),
                _ => Err(format!("expected \"replace\" or \"macvlan\", found {s:?}")),
            }),
            // The seed's semantics.
            None => Some(MacMode::Replace),
        };
        if let Some(c) = &r.child {
            match &mut mode {
                Some(MacMode::Macvlan { child }) => {
                    *child = self
                        .parse(c, "group.resource.child", values::iface)
                        .map(|()| c.get_ref().clone());
                }
                Some(MacMode::Replace) => self.error(
                    c,
                    "group.resource.child",
                    "only applies to mode = \"macvlan\"",
                ),
                None => {}
            }
        }
        let addr = r
            .address
            .as_ref()
            .and_then(|a| self.parse(a, "group.resource.address", values::ip_prefix));
        let gateway = r
            .gateway
            .as_ref()
            .and_then(|g| self.parse(g, "group.resource.gateway", values::ip));
        if let (Some(g), Some(MacMode::Macvlan { .. })) = (&r.gateway, &mode) {
            self.warn(
                g,
                "group.resource.gateway",
                "the default route is only set in replace mode",
            );
        }
        Some(ResourceSpec::Mac(MacSpec {
            iface: iface?,
            mac: mac?,
            mode: mode?,
            addr,
            gateway,
        }))
    }

    pub(super) fn script_resource(
        &mut self,
        r: &ResourceT,
        default_timeout: Duration,
    ) -> Option<ResourceSpec> {
        let Some(name) = &r.name else {
            self.missing(r, "name");
            return None;
        };
        self.parse(name, "group.resource.name", values::script_name)?;
        let kind = match r.kind.get_ref().as_str() {
            "script" => ScriptKind::Heartbeat,
            "lsb" => ScriptKind::Lsb,
            _ => {
                // OCF's standard provider when none is named.
                let provider = r
                    .provider
                    .as_ref()
                    .map_or("heartbeat".to_string(), |p| p.get_ref().clone());
                if let Some(p) = &r.provider {
                    self.parse(p, "group.resource.provider", values::script_name);
                }
                ScriptKind::Ocf { provider }
            }
        };
        let params = r
            .params
            .as_ref()
            .map(|p| p.get_ref().clone())
            .unwrap_or_default();
        if let Some(p) = &r.params {
            for key in p.get_ref().keys() {
                if let Err(msg) = values::env_name(key) {
                    self.error(p, "group.resource.params", msg);
                }
            }
        }
        Some(ResourceSpec::Script(ScriptSpec {
            name: name.get_ref().clone(),
            args: r
                .args
                .as_ref()
                .map(|a| a.get_ref().clone())
                .unwrap_or_default(),
            kind,
            params,
            timeout: r
                .timeout
                .as_ref()
                .map_or(default_timeout, |t| t.get_ref().0),
        }))
    }
}

/// (key, span) of every optional key present in a resource table.
fn present_fields(r: &ResourceT) -> Vec<(&'static str, Range<usize>)> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, span: Option<Range<usize>>| {
        if let Some(span) = span {
            out.push((name, span));
        }
    };
    add("address", r.address.as_ref().map(Spanned::span));
    add("iface", r.iface.as_ref().map(Spanned::span));
    add("broadcast", r.broadcast.as_ref().map(Spanned::span));
    add("label", r.label.as_ref().map(Spanned::span));
    add("mac", r.mac.as_ref().map(Spanned::span));
    add("mode", r.mode.as_ref().map(Spanned::span));
    add("child", r.child.as_ref().map(Spanned::span));
    add("gateway", r.gateway.as_ref().map(Spanned::span));
    add("name", r.name.as_ref().map(Spanned::span));
    add("args", r.args.as_ref().map(Spanned::span));
    add("provider", r.provider.as_ref().map(Spanned::span));
    add("params", r.params.as_ref().map(Spanned::span));
    add("timeout", r.timeout.as_ref().map(Spanned::span));
    out
}
