// Package monitoring tests what the chart ships for Prometheus and Grafana
// (docs/monitoring.md): every alert and dashboard query parses with
// Prometheus's parsers and reads only metrics a running statekeeper
// exposes, and every alert fires, through Prometheus's rule engine, over
// scrapes of a real statekeeper driven into the alert's condition.
package monitoring
