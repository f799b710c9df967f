"""Sends pulls to a Redis-speaking server the way Quay's registry processes do.

One new redis-py client per pull, configured as Quay configures it (connect timeout 1 s, socket
timeout 2 s, health checks, decoded responses), then one of the wire shapes Quay releases send:

  eval      PING, then EVAL of a pull script (v3.17 and later)
  evalsha   PING, then EVALSHA, with SCRIPT LOAD on NOSCRIPT (redis-py's registered scripts)
  hmset     HMSET of the fields, HINCRBY pull_count 1, EXPIRE 30 days (v3.16)
  pipeline  MULTI, HSETs, HINCRBY pull_count 1, EXEC (the pipelined tracker)

The pulls are JSON lines in a file: {"repository_id", "tag" (or null), "digest", "timestamp"}.
After the pulls it checks that SCAN finds nothing, as Quay's flush worker would ask. Exits 1 with
the error on the first failure; prints the number of pulls sent.

Usage: python send_pulls.py --port P [--password W [--username U]] [--db N] --shape eval|evalsha|hmset|pipeline PULLS
"""
import argparse
import json
import sys

import redis

# PullSketch's own script with Quay's calling convention (1 key; arguments end with the time in
# epoch seconds and the method). A real Redis runs it; PullSketch recognises the call by its key.
PULL_SCRIPT = """
local key = KEYS[1]
local method = ARGV[#ARGV]
local seconds = ARGV[#ARGV - 1]
local count = redis.call('HINCRBY', key, 'pull_count', 1)
redis.call('HSET', key, 'last_pull_timestamp', seconds, 'pull_method', method)
return tostring(count)
"""


def key_and_arguments(pull):
    repository_id, tag, digest, seconds = pull["repository_id"], pull["tag"], pull["digest"], pull["timestamp"]
    if tag is None:
        return f"pull_events:repo:{repository_id}:digest:{digest}", [repository_id, digest, seconds, "digest"]
    return f"pull_events:repo:{repository_id}:tag:{tag}:{digest}", [repository_id, tag, digest, seconds, "tag"]


def fields(pull):
    found = {
        "repository_id": pull["repository_id"],
        "manifest_digest": pull["digest"],
        "last_pull_timestamp": pull["timestamp"],
        "pull_method": "digest" if pull["tag"] is None else "tag",
    }
    if pull["tag"] is not None:
        found["tag_name"] = pull["tag"]
    return found


def send(client, shape, pull):
    key, arguments = key_and_arguments(pull)
    if shape == "eval":
        client.ping()
        client.eval(PULL_SCRIPT, 1, key, *arguments)
    elif shape == "evalsha":
        client.ping()
        client.register_script(PULL_SCRIPT)(keys=[key], args=arguments)
    elif shape == "hmset":
        client.hmset(key, fields(pull))
        client.hincrby(key, "pull_count", 1)
        client.expire(key, 2592000)
    elif shape == "pipeline":
        pipe = client.pipeline()
        for name, value in fields(pull).items():
            if name != "last_pull_timestamp":
                pipe.hset(key, name, value)
        pipe.hincrby(key, "pull_count", 1)
        pipe.hset(key, "last_pull_timestamp", pull["timestamp"])
        pipe.execute()
    else:
        raise ValueError(shape)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--password")
    parser.add_argument("--username")
    parser.add_argument("--db", type=int, default=0)
    parser.add_argument("--shape", required=True, choices=["eval", "evalsha", "hmset", "pipeline"])
    parser.add_argument("pulls")
    options = parser.parse_args()

    def client():
        return redis.StrictRedis(
            host="127.0.0.1", port=options.port, username=options.username, password=options.password, db=options.db,
            socket_connect_timeout=1, socket_timeout=2, health_check_interval=2, decode_responses=True,
        )

    sent = 0
    with open(options.pulls) as pulls:
        lines = pulls.readlines()
    for line in lines:
        if not line.strip():
            continue
        connection = client()
        send(connection, options.shape, json.loads(line))
        connection.connection_pool.disconnect()
        sent += 1
    connection = client()
    cursor, keys = connection.scan(0, match="pull_events:*", count=100)
    if int(cursor) != 0 or keys:
        sys.exit(f"SCAN returned {cursor!r} {keys!r}, expected 0 and no keys")
    connection.connection_pool.disconnect()
    print(sent)


if __name__ == "__main__":
    try:
        main()
    except redis.RedisError as error:
        sys.exit(f"{type(error).__name__}: {error}")
