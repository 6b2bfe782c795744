# A read-only integration: every sample and alert of the fleet, as the `integration` identity.
#   FLICK_NATS_URL=tls://hub.example.com:4222 FLICK_CREDS=integration.creds FLICK_CA=ca.pem \
#     python3 subscribe.py          # pip install nats-py
import asyncio, json, os, ssl

import nats


async def main():
    prefix = os.environ.get("FLICK_PREFIX", "flick")
    stop_after = int(os.environ.get("FLICK_COUNT", "0"))  # samples to print; 0: forever
    tls = ssl.create_default_context(cafile=os.environ["FLICK_CA"])
    nc = await nats.connect(os.environ["FLICK_NATS_URL"], tls=tls,
                            user_credentials=os.environ["FLICK_CREDS"])
    done, seen = asyncio.Event(), 0

    async def on_sample(msg):
        nonlocal seen
        sample = json.loads(msg.data)
        print("sample", sample["serverId"], sample["cpuUsage"], flush=True)
        seen += 1
        if seen == stop_after:
            done.set()

    async def on_alert(msg):
        print("alert", json.loads(msg.data)["message"], flush=True)

    await nc.subscribe(f"{prefix}.metrics.*", cb=on_sample)
    await nc.subscribe(f"{prefix}.alerts.*", cb=on_alert)
    await nc.flush()
    print("subscribed", flush=True)
    await done.wait()
    await nc.close()


asyncio.run(main())
