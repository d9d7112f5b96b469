// Guests pin host cores (their hot loops run natively at CPL3): run VM tests one at a time so they don't starve each
// other on a 2-core machine. Assertions never depend on timing, only on what the guests observed.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
