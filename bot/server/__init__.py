"""The long-running bot: webhook endpoints, durable queue, workers, platform adapters."""
