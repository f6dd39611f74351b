"""The witness: memory-only ``key -> newest acknowledged stamp``, a read barrier
for coordinators. Loses everything on restart, by design: it then answers
"unknown", which sends readers to the storage nodes."""
