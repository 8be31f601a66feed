"""Videos on this machine: download and verification, probe, QC metrics, frames and signatures."""
