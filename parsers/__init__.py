"""Document parsers: Mistral invoices and usage exports into documents and lines."""
