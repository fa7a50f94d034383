//! Integration tests of the controller: the pure controller with the simulated device,
//! leases on the real PostgreSQL (127.0.0.1:5432, several processes), and MQTT ingest
//! against the real Mosquitto broker (127.0.0.1:1883).

mod controller;
mod lease_pg;
mod mqtt;
mod support;
