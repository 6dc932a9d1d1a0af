//! Resource alarms, as RabbitMQ raises them: while any is on, connections
//! that publish get `connection.blocked` and are not read from; consumers
//! keep draining. The monitors that raise them live in `server.rs`.

/// Which alarms are on. One value in a `watch` channel that every
/// connection holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlarmSet {
    /// Resident memory above `--memory-high-watermark`.
    pub memory: bool,
    /// Free disk space below `--disk-free-limit`, or the disk refused a write.
    pub disk: bool,
    /// More bytes wait for the store's writer than it may hold: the disk
    /// cannot keep up with the publishers.
    pub store_backlog: bool,
    /// Raised by fault injection, whatever the memory monitor measures
    /// (the monitors write only the fields above).
    pub injected_memory: bool,
    /// Raised by fault injection, whatever the disk monitor measures.
    pub injected_disk: bool,
}

impl AlarmSet {
    pub fn any(&self) -> bool {
        self.memory_on() || self.disk_on() || self.store_backlog
    }

    /// The memory alarm as RabbitMQ reports it: measured or injected.
    pub fn memory_on(&self) -> bool {
        self.memory || self.injected_memory
    }

    /// The disk alarm as RabbitMQ reports it: measured or injected.
    pub fn disk_on(&self) -> bool {
        self.disk || self.injected_disk
    }

    /// The reason a `connection.blocked` carries. RabbitMQ's texts for its
    /// two alarms; the third is ours.
    pub fn reason(&self) -> &'static str {
        match (self.memory_on(), self.disk_on()) {
            (true, true) => "low on memory & low on disk",
            (true, false) => "low on memory",
            (false, true) => "low on disk",
            (false, false) => "store write backlog",
        }
    }
}
