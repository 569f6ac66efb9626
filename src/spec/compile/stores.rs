//! The spec's stores of last-known state (`state:`): records or lists, with the rules that
//! update them from published events.

use serde_saphyr::Spanned;

use super::{
    Checker,
    place::{Ctx, Place},
};
use crate::spec::{
    StoreKind, StoreOp, StoreRule, StoreSpec,
    raw::{RawStore, RawStoreRule},
};

impl Checker<'_> {
    pub(super) fn store(&mut self, name: &Spanned<String>, raw: &RawStore) -> Option<StoreSpec> {
        let kind = match (&raw.records, &raw.lists) {
            (Some(r), None) if r.value.max_per_tenant > 0 => {
                StoreKind::Records { max_per_tenant: r.value.max_per_tenant }
            }
            (None, Some(l)) if l.value.keep > 0 && l.value.max_keys_per_tenant > 0 => {
                StoreKind::Lists { keep: l.value.keep, max_keys_per_tenant: l.value.max_keys_per_tenant }
            }
            (Some(_), Some(_)) | (None, None) => {
                self.error(
                    name.referenced,
                    format!("store `{}` needs exactly one of `records` or `lists`", name.value),
                );
                return None;
            }
            (Some(Spanned { referenced: at, .. }), None) | (None, Some(Spanned { referenced: at, .. })) => {
                self.error(*at, format!("store `{}`: limits must be at least 1", name.value));
                return None;
            }
        };
        let rules = raw.on.iter().filter_map(|rule| self.store_rule(&name.value, kind, rule)).collect();
        Some(StoreSpec { name: name.value.clone(), kind, rules })
    }

    pub(super) fn store_rule(
        &mut self,
        store: &str,
        kind: StoreKind,
        rule: &Spanned<RawStoreRule>,
    ) -> Option<StoreRule> {
        let (at, r) = (rule.referenced, &rule.value);
        let place = Place::new(Ctx::StoreRule);
        let types = self.types(&r.types, at, "types");
        let Some(key) = &r.key else {
            self.error(at, "a state rule needs a `key`");
            return None;
        };
        let key = self.str_template(key, &place, "key");
        let ops = [r.merge.is_some(), r.replace.is_some(), r.append.is_some(), r.delete];
        if ops.iter().filter(|&&o| o).count() != 1 {
            self.error(at, "a state rule needs exactly one of `merge`, `replace`, `append` or `delete: true`");
            return None;
        }
        let op = match (kind, &r.merge, &r.replace, &r.append) {
            (StoreKind::Records { .. }, Some(merge), _, _) => StoreOp::Merge(self.value_parts(merge, &place, "merge")),
            (StoreKind::Records { .. }, _, Some(replace), _) => {
                StoreOp::Replace(self.value_template(replace, &place, "replace")?)
            }
            (StoreKind::Records { .. }, ..) if r.delete => StoreOp::Delete,
            (StoreKind::Lists { .. }, _, _, Some(append)) => {
                StoreOp::Append(self.value_parts(append, &place, "append"))
            }
            (StoreKind::Records { .. }, ..) => {
                self.error(at, format!("store `{store}` holds records: use `merge`, `replace` or `delete`"));
                return None;
            }
            (StoreKind::Lists { .. }, ..) => {
                self.error(at, format!("store `{store}` holds lists: use `append`"));
                return None;
            }
        };
        Some(StoreRule { types: types?, key: key?, op })
    }
}
