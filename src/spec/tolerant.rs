//! Reading a spec file into the shapes of `raw` without stopping at the first unknown field, so
//! that `check` reports every misspelt key of a file at once, with the rest of its errors.
//!
//! Serde's derived code hands each struct's field names to the deserializer
//! (`deserialize_struct`), so `raw` stays the only description of which keys exist. The
//! [`Tolerant`] wrapper sits between those impls and serde-saphyr's deserializer: it passes
//! everything through, except that the keys of every struct mapping are looked up first. A key
//! the struct does not have is recorded, with its location and the close field name if there is
//! one, and is then read *as that field* when the mapping does not have it already. A misspelt
//! `patern` is therefore reported once, not also as a missing `pattern`, and the rest of the file
//! is still read and checked as if it had been spelt right. Keys with no close field are skipped.
//!
//! Other shape errors (a value of the wrong type, a missing required field) still end the read:
//! serde's derived code cannot go on without the value.

use std::{cell::RefCell, fmt};

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde_saphyr::{Location, Spanned};

use crate::parse_errors::suggest;

/// A key of a struct mapping that the format does not have.
#[derive(Debug)]
pub(super) struct UnknownField {
    /// Where the key is.
    pub at: Location,
    /// `unknown field `x`, expected one of a, b` and, when one is close, the suggestion.
    pub message: String,
}

/// Parses `text` as a `T`, recording unknown fields instead of failing on them. The unknown fields
/// are returned whether or not the read succeeded: those before a fatal error are still found.
pub(super) fn from_str<'de, T: Deserialize<'de>>(
    text: &'de str,
) -> (Result<T, serde_saphyr::Error>, Vec<UnknownField>) {
    let found = RefCell::new(Vec::new());
    let result = serde_saphyr::with_deserializer_from_str(text, |de| T::deserialize(Tolerant { de, found: &found }));
    (result, found.into_inner())
}

/// Where the wrappers record unknown fields. One per read; the wrappers only borrow it.
type Found = RefCell<Vec<UnknownField>>;

/// A deserializer that checks the keys of struct mappings and otherwise defers to `de`.
struct Tolerant<'f, D> {
    de: D,
    found: &'f Found,
}

/// serde-saphyr's `Spanned` hands over its locations as these structs. They come from the
/// parser, not the file, and their keys have no location to read, so they pass unchecked.
fn is_location_struct(name: &str) -> bool {
    matches!(name, "Location" | "Span")
}

/// Forwards `deserialize_*` methods that take only a visitor, wrapping the visitor so that what it
/// is handed next is wrapped too.
macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.de.$method(Wrap::new(visitor, self.found))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Tolerant<'_, D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string deserialize_bytes
        deserialize_byte_buf deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.de.deserialize_unit_struct(name, Wrap::new(visitor, self.found))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.de.deserialize_newtype_struct(name, Wrap::new(visitor, self.found))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.de.deserialize_tuple(len, Wrap::new(visitor, self.found))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_tuple_struct(name, len, Wrap::new(visitor, self.found))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let checked = (!is_location_struct(name)).then_some(fields);
        self.de.deserialize_struct(name, fields, Wrap { inner: visitor, found: self.found, fields: checked })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_enum(name, variants, Wrap::new(visitor, self.found))
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

/// Whatever serde hands on while reading (a visitor, a seed, a sequence, map or enum access),
/// wrapped so that every deserializer it later hands on is a [`Tolerant`] one too.
struct Wrap<'f, V> {
    inner: V,
    found: &'f Found,
    /// For the visitor of a struct: its fields, which the keys of its mapping are checked against.
    fields: Option<&'static [&'static str]>,
}

impl<'f, V> Wrap<'f, V> {
    fn new(inner: V, found: &'f Found) -> Self {
        Self { inner, found, fields: None }
    }
}

/// Forwards `visit_*` methods of plain values, which hand over nothing to wrap.
macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit!(
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64) visit_i128(i128) visit_u8(u8)
        visit_u16(u16) visit_u32(u32) visit_u64(u64) visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char)
        visit_str(&str) visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    );

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Tolerant { de, found: self.found })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Tolerant { de, found: self.found })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(Wrap::new(seq, self.found))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        match self.fields {
            Some(fields) => self.inner.visit_map(StructMap { map, fields, given: Vec::new(), found: self.found }),
            None => self.inner.visit_map(Wrap::new(map, self.found)),
        }
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(Wrap::new(data, self.found))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Tolerant { de, found: self.found })
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, A::Error> {
        self.inner.next_element_seed(Wrap::new(seed, self.found))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, A::Error> {
        self.inner.next_key_seed(Wrap::new(seed, self.found))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.inner.next_value_seed(Wrap::new(seed, self.found))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'f, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<'f, A> {
    type Error = A::Error;
    type Variant = Wrap<'f, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(Wrap::new(seed, self.found))?;
        Ok((value, Wrap::new(variant, self.found)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.inner.newtype_variant_seed(Wrap::new(seed, self.found))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(len, Wrap::new(visitor, self.found))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(fields, Wrap { inner: visitor, found: self.found, fields: Some(fields) })
    }
}

/// The mapping of a struct: only keys the struct has reach serde's derived code.
struct StructMap<'f, A> {
    map: A,
    fields: &'static [&'static str],
    /// Fields handed over so far, so that none is handed over twice.
    given: Vec<&'static str>,
    found: &'f Found,
}

impl<A> StructMap<'_, A> {
    /// The field `key` is read as: itself, or for an unknown key (recorded here) the field it is
    /// close to, if any.
    fn field_for(&self, key: &Spanned<String>) -> Option<&'static str> {
        if let Some(field) = self.fields.iter().find(|f| **f == key.value) {
            return Some(field);
        }
        let guess = suggest::closest(&key.value, self.fields.iter().copied());
        self.found
            .borrow_mut()
            .push(UnknownField { at: key.referenced, message: suggest::unknown_field(&key.value, self.fields) });
        guess
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for StructMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<Spanned<String>>()? {
            match self.field_for(&key) {
                Some(field) if !self.given.contains(&field) => {
                    self.given.push(field);
                    return seed.deserialize(field.into_deserializer()).map(Some);
                }
                // Unknown and close to nothing, or close to a field the mapping has: its value
                // is not read (the key is reported already).
                _ => {
                    self.map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.map.next_value_seed(Wrap::new(seed, self.found))
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}
