"""parse_metrics.py: reads a Prometheus text exposition on standard input, parses it with the
Prometheus Python client's parser (prometheus_client, installed from requirements.txt), and
prints its families and samples as JSON. A malformed exposition makes the parser raise, and the
script exit non-zero."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = [
    {
        "name": family.name,
        "type": family.type,
        "help": family.documentation,
        "samples": [
            {"name": sample.name, "labels": sample.labels, "value": sample.value}
            for sample in family.samples
        ],
    }
    for family in text_string_to_metric_families(sys.stdin.read())
]
json.dump(families, sys.stdout, allow_nan=False)
