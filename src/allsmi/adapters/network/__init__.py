"""The network edge: HTTP client and server, the endpoints, the scraping source."""
