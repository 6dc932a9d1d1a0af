//! The numbers that name things, as types, so a channel number cannot be
//! passed where a delivery tag is expected. A leaf: broker, store and
//! protocol all use these, and this imports nothing from them.

use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl $name {
            #[inline]
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl From<$inner> for $name {
            #[inline]
            fn from(v: $inner) -> Self {
                $name(v)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A channel number within one connection (0 is the connection itself).
    ChannelId(u16)
);
id!(
    /// A delivery tag: per channel, from 1, in delivery order.
    DeliveryTag(u64)
);
id!(
    /// A connection, unique for the broker's lifetime.
    ConnectionId(u64)
);
id!(
    /// A publish's sequence number on a channel in confirm mode (from 1):
    /// what basic.ack/nack to the publisher name.
    PublishSeq(u64)
);
id!(
    /// A request to the store, in the order the writer resolves them.
    StoreTicket(u64)
);
