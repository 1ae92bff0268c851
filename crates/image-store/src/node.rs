//! What the store keeps in memory of each image: [`Node`] (and the public [`ImageInfo`]), and
//! the [`Graph`] state of parent links to images not in the store.

use std::collections::{BTreeSet, HashMap};
use std::sync::Weak;

use dashmap::DashMap;
use layer_store::{ChainId, LayerHandle};

use crate::id::ImageId;
use crate::image::Image;
use crate::time::Timestamp;

/// One image in memory (moby's `imageMeta`, plus the parent link): what listing and the graph
/// need. The config bytes are not kept: [`ImageStore::get`](crate::ImageStore::get) reads them again, unless a caller
/// still holds the image from an earlier `get`.
#[derive(Debug)]
pub(crate) struct Node {
    /// The top layer's chain ID, `None` for an image with no layers.
    pub(crate) chain_id: Option<ChainId>,
    /// The config's `created`.
    pub(crate) created: Option<Timestamp>,
    /// The token of the store's reference on the top layer (meaningful when `chain_id` is set;
    /// the chain ID and the token make up the [`LayerHandle`]).
    pub(crate) layer_token: u64,
    /// The config, for as long as some caller holds it.
    pub(crate) image: Weak<Image>,
    /// The parent link as stored on disk (possibly naming an image not in the store).
    pub(crate) parent: Option<ImageId>,
    /// Images in the store whose parent link names this image, sorted. A vector, not a set:
    /// most images have zero or one child, and a B-tree node costs ~700 bytes.
    pub(crate) children: Vec<ImageId>,
}

impl Node {
    pub(crate) fn new(
        chain_id: Option<ChainId>,
        created: Option<Timestamp>,
        handle: Option<&LayerHandle>,
        parent: Option<ImageId>,
    ) -> Node {
        Node {
            chain_id,
            created,
            layer_token: handle.map_or(0, LayerHandle::token),
            image: Weak::new(),
            parent,
            children: Vec::new(),
        }
    }

    /// The store's reference on the top layer.
    pub(crate) fn layer(&self) -> Option<LayerHandle> {
        self.chain_id.map(|c| LayerHandle::new(c, self.layer_token))
    }

    pub(crate) fn info(&self, id: ImageId) -> ImageInfo {
        ImageInfo {
            id,
            chain_id: self.chain_id,
            created: self.created,
            parent: self.parent,
        }
    }
}

/// What the store keeps in memory of an image: everything listing needs, without the config
/// bytes ([`ImageStore::get`](crate::ImageStore::get) gives the whole [`Image`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image ID.
    pub id: ImageId,
    /// The chain ID of its top layer, `None` for an image with no layers
    /// ([`Image::chain_id`]).
    pub chain_id: Option<ChainId>,
    /// The config's `created` time ([`Image::created`]).
    pub created: Option<Timestamp>,
    /// Its parent link (see [`ImageStore::get_parent`](crate::ImageStore::get_parent)).
    pub parent: Option<ImageId>,
}

/// State that only graph mutations touch, under the store's write lock.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    /// Parent links to images not in the store: missing parent -> children naming it.
    pub(crate) waiting: HashMap<ImageId, BTreeSet<ImageId>>,
}

/// Removes `child` from what `parent` is known to have: its children list when `parent` is in
/// the store, the links waiting for it otherwise.
pub(crate) fn forget_child(
    images: &DashMap<ImageId, Node>,
    graph: &mut Graph,
    child: ImageId,
    parent: ImageId,
) {
    match images.get_mut(&parent) {
        Some(mut p) => {
            if let Ok(at) = p.children.binary_search(&child) {
                p.children.remove(at);
            }
        }
        None => {
            if let Some(set) = graph.waiting.get_mut(&parent) {
                set.remove(&child);
                if set.is_empty() {
                    graph.waiting.remove(&parent);
                }
            }
        }
    }
}
