//! The peers of a node, in id order: a sorted vector, which for the few peers a group has is
//! far smaller than a map (a host keeps one machine per group, thousands of them).

use super::Peer;
use crate::id::NodeId;

#[derive(Debug, Clone, Default)]
pub(super) struct Peers(Vec<(NodeId, Peer)>);

impl Peers {
    fn find(&self, id: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(p, _)| p.as_str().cmp(id))
    }
    pub fn get(&self, id: &str) -> Option<&Peer> {
        self.find(id).ok().map(|i| &self.0[i].1)
    }
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Peer> {
        self.find(id).ok().map(|i| &mut self.0[i].1)
    }
    pub fn contains_key(&self, id: &str) -> bool {
        self.find(id).is_ok()
    }
    pub fn insert(&mut self, id: NodeId, peer: Peer) {
        match self.find(&id) {
            Ok(i) => self.0[i].1 = peer,
            Err(i) => self.0.insert(i, (id, peer)),
        }
        self.0.shrink_to_fit();
    }
    pub fn remove(&mut self, id: &str) -> Option<Peer> {
        self.find(id).ok().map(|i| self.0.remove(i).1)
    }
    pub fn keys(&self) -> impl Iterator<Item = &NodeId> {
        self.0.iter().map(|(id, _)| id)
    }
    pub fn values(&self) -> impl Iterator<Item = &Peer> {
        self.0.iter().map(|(_, p)| p)
    }
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Peer> {
        self.0.iter_mut().map(|(_, p)| p)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &Peer)> {
        self.0.iter().map(|(id, p)| (id, p))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
}
