"""Schemathesis hooks for the hub's conformance run.

`GET /v1/locations/{location}/changes?wait=S` holds an answer back up to S seconds when nothing
changed (an edge node's long poll). Generated cases get `wait=0` there, so the run exercises the
endpoint instead of waiting out long polls.
"""
import schemathesis


@schemathesis.hook
def map_query(ctx, query):
    if query and "wait" in query and ctx.operation.path.endswith("/changes"):
        query = dict(query)
        query["wait"] = 0
    return query
