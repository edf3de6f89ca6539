# The tests' stand-ins on the swarm (a notebook answering HTTP, an outside server, the hub): the
# gateway image with python3, so one image is loaded on the nodes.
ARG GATEWAY_IMAGE
FROM ${GATEWAY_IMAGE}
USER root
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 >/dev/null \
 && rm -rf /var/lib/apt/lists/*
