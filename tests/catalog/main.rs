//! The catalog's functions end to end against the local AWS emulator, one module each, in one
//! test binary (each test binary links the whole AWS SDK: one link, not one per function).

mod network_block_ip_adapter;

#[cfg(any())] // until core v2 lands: written against its trait
mod network_block_ip;
