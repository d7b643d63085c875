"""`scripts/redrive <stage>`: relabel the images of the stream batches labelling gave up on
(the failure queue imagelabeller-labelling-failed; docs/AWS.md, Stream failures)."""
