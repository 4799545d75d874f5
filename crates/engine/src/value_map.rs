//! [`ValueMap`]: the entries of an object value, sorted by key.
//!
//! Most objects a plan holds are a resource instance's few attributes, and
//! a `BTreeMap` spends a whole node on them (632 bytes, room for 11
//! entries, whatever the count). A small map is a vector of exactly its
//! entries, kept sorted and searched by bisection; past [`SMALL`] entries
//! it becomes a `BTreeMap`, so building a large object key by key stays
//! `O(n log n)`. Both iterate in key order, as a `BTreeMap` does; the API
//! is the part of `BTreeMap`'s the engine and providers use.

use crate::value::Value;
use std::collections::{BTreeMap, btree_map};
use std::fmt;

/// Entries up to which a map is a sorted vector.
const SMALL: usize = 16;

#[derive(Clone, Default)]
pub struct ValueMap(Repr);

#[derive(Clone)]
enum Repr {
    Small(Vec<(String, Value)>),
    Large(BTreeMap<String, Value>),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Small(Vec::new())
    }
}

impl ValueMap {
    pub const fn new() -> ValueMap {
        ValueMap(Repr::Small(Vec::new()))
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Small(v) => v.len(),
            Repr::Large(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn find(entries: &[(String, Value)], key: &str) -> Result<usize, usize> {
        entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get<Q: AsRef<str> + ?Sized>(&self, key: &Q) -> Option<&Value> {
        match &self.0 {
            Repr::Small(v) => Self::find(v, key.as_ref()).ok().map(|i| &v[i].1),
            Repr::Large(m) => m.get(key.as_ref()),
        }
    }

    pub fn get_mut<Q: AsRef<str> + ?Sized>(&mut self, key: &Q) -> Option<&mut Value> {
        match &mut self.0 {
            Repr::Small(v) => Self::find(v, key.as_ref()).ok().map(|i| &mut v[i].1),
            Repr::Large(m) => m.get_mut(key.as_ref()),
        }
    }

    pub fn contains_key<Q: AsRef<str> + ?Sized>(&self, key: &Q) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, returning the value it had.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match &mut self.0 {
            Repr::Small(v) => match Self::find(v, &key) {
                Ok(i) => Some(std::mem::replace(&mut v[i].1, value)),
                Err(i) if v.len() < SMALL => {
                    v.insert(i, (key, value));
                    None
                }
                Err(_) => {
                    let mut large: BTreeMap<String, Value> = std::mem::take(v).into_iter().collect();
                    large.insert(key, value);
                    self.0 = Repr::Large(large);
                    None
                }
            },
            Repr::Large(m) => m.insert(key, value),
        }
    }

    pub fn remove<Q: AsRef<str> + ?Sized>(&mut self, key: &Q) -> Option<Value> {
        match &mut self.0 {
            Repr::Small(v) => Self::find(v, key.as_ref()).ok().map(|i| v.remove(i).1),
            Repr::Large(m) => m.remove(key.as_ref()),
        }
    }

    /// The entry of `key`, to fill in when it is missing.
    pub fn entry(&mut self, key: String) -> Entry<'_> {
        Entry { map: self, key }
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut Value) -> bool) {
        match &mut self.0 {
            Repr::Small(v) => v.retain_mut(|(k, val)| keep(k, val)),
            Repr::Large(m) => m.retain(|k, val| keep(k, val)),
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        match &self.0 {
            Repr::Small(v) => Iter::Small(v.iter()),
            Repr::Large(m) => Iter::Large(m.iter()),
        }
    }

    pub fn iter_mut(&mut self) -> IterMut<'_> {
        match &mut self.0 {
            Repr::Small(v) => IterMut::Small(v.iter_mut()),
            Repr::Large(m) => IterMut::Large(m.iter_mut()),
        }
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator + Clone {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator + Clone {
        self.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut Value> + ExactSizeIterator {
        self.iter_mut().map(|(_, v)| v)
    }

    pub fn into_keys(self) -> impl DoubleEndedIterator<Item = String> + ExactSizeIterator {
        self.into_iter().map(|(k, _)| k)
    }

    pub fn into_values(self) -> impl DoubleEndedIterator<Item = Value> + ExactSizeIterator {
        self.into_iter().map(|(_, v)| v)
    }

    pub fn first_key_value(&self) -> Option<(&String, &Value)> {
        self.iter().next()
    }

    pub fn last_key_value(&self) -> Option<(&String, &Value)> {
        self.iter().next_back()
    }
}

/// A key's place in a [`ValueMap`] (see [`ValueMap::entry`]).
pub struct Entry<'a> {
    map: &'a mut ValueMap,
    key: String,
}

impl<'a> Entry<'a> {
    pub fn or_insert_with(self, make: impl FnOnce() -> Value) -> &'a mut Value {
        if !self.map.contains_key(&self.key) {
            self.map.insert(self.key.clone(), make());
        }
        self.map.get_mut(&self.key).expect("present: found or inserted just above")
    }

    pub fn or_insert(self, value: Value) -> &'a mut Value {
        self.or_insert_with(|| value)
    }

    pub fn or_default(self) -> &'a mut Value {
        self.or_insert_with(Value::default)
    }
}

/// Iterates a map's entries in key order.
#[derive(Clone)]
pub enum Iter<'a> {
    Small(std::slice::Iter<'a, (String, Value)>),
    Large(btree_map::Iter<'a, String, Value>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a Value);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(it) => it.next().map(|(k, v)| (k, v)),
            Iter::Large(it) => it.next(),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Small(it) => it.size_hint(),
            Iter::Large(it) => it.size_hint(),
        }
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(it) => it.next_back().map(|(k, v)| (k, v)),
            Iter::Large(it) => it.next_back(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Iterates a map's entries in key order, values mutable.
pub enum IterMut<'a> {
    Small(std::slice::IterMut<'a, (String, Value)>),
    Large(btree_map::IterMut<'a, String, Value>),
}

impl<'a> Iterator for IterMut<'a> {
    type Item = (&'a String, &'a mut Value);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            IterMut::Small(it) => it.next().map(|(k, v)| (&*k, v)),
            IterMut::Large(it) => it.next(),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            IterMut::Small(it) => it.size_hint(),
            IterMut::Large(it) => it.size_hint(),
        }
    }
}

impl DoubleEndedIterator for IterMut<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            IterMut::Small(it) => it.next_back().map(|(k, v)| (&*k, v)),
            IterMut::Large(it) => it.next_back(),
        }
    }
}

impl ExactSizeIterator for IterMut<'_> {}

/// A map's entries by value, in key order.
pub enum IntoIter {
    Small(std::vec::IntoIter<(String, Value)>),
    Large(btree_map::IntoIter<String, Value>),
}

impl Iterator for IntoIter {
    type Item = (String, Value);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            IntoIter::Small(it) => it.next(),
            IntoIter::Large(it) => it.next(),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            IntoIter::Small(it) => it.size_hint(),
            IntoIter::Large(it) => it.size_hint(),
        }
    }
}

impl DoubleEndedIterator for IntoIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            IntoIter::Small(it) => it.next_back(),
            IntoIter::Large(it) => it.next_back(),
        }
    }
}

impl ExactSizeIterator for IntoIter {}

impl IntoIterator for ValueMap {
    type Item = (String, Value);
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        match self.0 {
            Repr::Small(v) => IntoIter::Small(v.into_iter()),
            Repr::Large(m) => IntoIter::Large(m.into_iter()),
        }
    }
}

impl<'a> IntoIterator for &'a ValueMap {
    type Item = (&'a String, &'a Value);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut ValueMap {
    type Item = (&'a String, &'a mut Value);
    type IntoIter = IterMut<'a>;
    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

/// A key given twice keeps its last value, as `BTreeMap` does.
impl FromIterator<(String, Value)> for ValueMap {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(items: I) -> ValueMap {
        let mut entries: Vec<(String, Value)> = items.into_iter().collect();
        if entries.len() > SMALL {
            return ValueMap(Repr::Large(entries.into_iter().collect()));
        }
        // Stable: of equal keys the last given comes last, and is kept.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(String, Value)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match kept.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => kept.push(entry),
            }
        }
        if kept.len() > SMALL {
            return ValueMap(Repr::Large(kept.into_iter().collect()));
        }
        ValueMap(Repr::Small(kept))
    }
}

impl Extend<(String, Value)> for ValueMap {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, items: I) {
        for (k, v) in items {
            self.insert(k, v);
        }
    }
}

impl From<BTreeMap<String, Value>> for ValueMap {
    fn from(map: BTreeMap<String, Value>) -> ValueMap {
        if map.len() > SMALL { ValueMap(Repr::Large(map)) } else { ValueMap(Repr::Small(map.into_iter().collect())) }
    }
}

impl<const N: usize> From<[(String, Value); N]> for ValueMap {
    fn from(items: [(String, Value); N]) -> ValueMap {
        items.into_iter().collect()
    }
}

impl From<ValueMap> for BTreeMap<String, Value> {
    fn from(map: ValueMap) -> BTreeMap<String, Value> {
        match map.0 {
            Repr::Small(v) => v.into_iter().collect(),
            Repr::Large(m) => m,
        }
    }
}

impl PartialEq for ValueMap {
    fn eq(&self, other: &ValueMap) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for ValueMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<Q: AsRef<str> + ?Sized> std::ops::Index<&Q> for ValueMap {
    type Output = Value;
    fn index(&self, key: &Q) -> &Value {
        self.get(key).expect("no entry found for key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(m: &ValueMap) -> Vec<&str> {
        m.keys().map(String::as_str).collect()
    }

    #[test]
    fn a_map_keeps_its_keys_sorted_and_its_last_value_small_or_large() {
        for n in [0, 3, SMALL, SMALL + 1, 200] {
            let mut by_insert = ValueMap::new();
            let mut reference = BTreeMap::new();
            for i in (0..n).rev().chain(0..n) {
                let key = format!("k{:03}", (i * 7) % n.max(1));
                by_insert.insert(key.clone(), Value::from(i));
                reference.insert(key, Value::from(i));
            }
            let collected: ValueMap = reference.clone().into_iter().chain(reference.clone()).collect();
            assert_eq!(by_insert, collected, "n = {n}");
            assert_eq!(BTreeMap::from(by_insert.clone()), reference, "n = {n}");
            assert_eq!(by_insert.len(), reference.len());
            assert!(keys(&by_insert).windows(2).all(|w| w[0] < w[1]), "n = {n}");
            for (k, v) in &reference {
                assert_eq!(by_insert.get(k), Some(v));
            }
        }
    }

    #[test]
    fn collecting_a_key_twice_keeps_the_last_and_removing_keeps_order() {
        let mut m: ValueMap =
            [("b".to_string(), Value::from(1)), ("a".to_string(), Value::from(2)), ("b".to_string(), Value::from(3))].into();
        assert_eq!(keys(&m), ["a", "b"]);
        assert_eq!(m["b"], Value::from(3));
        assert_eq!(m.remove("a"), Some(Value::from(2)));
        assert_eq!(m.remove("a"), None);
        *m.entry("c".into()).or_default() = Value::from(4);
        m.retain(|k, _| k != "b");
        assert_eq!(keys(&m), ["c"]);
        assert_eq!(m.iter().next_back().map(|(k, _)| k.as_str()), Some("c"));
    }
}
