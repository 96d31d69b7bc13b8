"""GS1 identifiers, products, batches, EPCIS 2.0 events, labels, the resolver and scans."""
