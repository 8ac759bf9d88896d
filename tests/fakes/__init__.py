"""Fake servers for tests: real HTTP on 127.0.0.1 that behave like the services we crawl."""
