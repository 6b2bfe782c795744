# An integration that publishes samples of its own: it enrols like a host (a key pair made here,
# the hub signs a NATS identity for the public key) and publishes with the .creds it writes.
#   FLICK_HUB=http://hub.example.com:8080 FLICK_TOKEN=<from POST /api/v1/enrollments> \
#     python3 enrol_and_publish.py  # pip install nats-py nkeys
import asyncio, datetime, json, os, ssl, urllib.request

import nats
import nkeys

HUB, TOKEN = os.environ["FLICK_HUB"].rstrip("/"), os.environ["FLICK_TOKEN"]


def enrol():
    # The seed never leaves this machine; only the public key is sent.
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(seed).public_key.decode()
    request = urllib.request.Request(
        f"{HUB}/api/v1/enroll", method="POST", headers={"content-type": "application/json"},
        data=json.dumps({"token": TOKEN, "publicKey": public, "hostname": "my-script"}).encode())
    enrolled = json.load(urllib.request.urlopen(request))
    creds = os.open("my-script.creds", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(creds, "w") as f:
        f.write("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
                "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n"
                % (enrolled["jwt"], seed.decode()))
    with open("hub-ca.pem", "w") as f:
        f.write(enrolled["ca"])
    return enrolled


async def main():
    enrolled = enrol()
    server_id, prefix = enrolled["serverId"], enrolled["prefix"]
    nc = await nats.connect(enrolled["natsUrls"], user_credentials="my-script.creds",
                            tls=ssl.create_default_context(cafile="hub-ca.pem"),
                            inbox_prefix=enrolled["inboxPrefix"])
    js = nc.jetstream()
    for _ in range(int(os.environ.get("FLICK_SAMPLES", "1"))):
        now = datetime.datetime.now(datetime.timezone.utc)
        sample = {"v": 1, "serverId": server_id,
                  "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                  "cpuUsage": 12.5, "memoryUsage": 40.0, "diskUsage": 55.0, "networkUsage": 0}
        # Nats-Msg-Id: a sample re-sent after a lost acknowledgement is stored once.
        ack = await js.publish(f"{prefix}.metrics.{server_id}", json.dumps(sample).encode(),
                               headers={"Nats-Msg-Id": f"{server_id}:{int(now.timestamp() * 1000)}"})
        print("published", server_id, ack.stream, ack.seq, flush=True)
        await asyncio.sleep(1)
    await nc.close()


asyncio.run(main())
