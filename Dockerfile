# mailbridge: build with dev dependencies, run with production ones only, as a non-root user.
# Everything installed is pinned: the base image by version and digest (Node 24.21.0 on Alpine,
# the Node CI runs the tests on), dumb-init by version, the npm packages by package-lock.json
# (npm ci). Renew the digest with `docker buildx imagetools inspect node:24.21.0-alpine`.
ARG NODE_IMAGE=node:24.21.0-alpine@sha256:ebfe2f90462722a7a4de65e91990e97fe0d401c70e0e762c5b53302f905ec1c1

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE}
RUN apk add --no-cache 'dumb-init~1.2.5'
# UV_THREADPOOL_SIZE: every spool fsync holds a libuv thread while the disk works; the default 4
# makes concurrent SMTP sessions queue behind each other. It must be set before node starts.
ENV NODE_ENV=production \
    UV_THREADPOOL_SIZE=16 \
    MAILBRIDGE_SMTP_HOST=0.0.0.0 \
    MAILBRIDGE_HTTP_HOST=0.0.0.0 \
    MAILBRIDGE_SPOOL_DIR=/var/spool/mailbridge
WORKDIR /app
COPY package.json package-lock.json ./
# the speed patches to dependencies (docs/deployment.md), which --ignore-scripts skips
COPY scripts/patch-dependencies.mjs ./scripts/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && \
    node scripts/patch-dependencies.mjs && npm cache clean --force
COPY --from=build /app/dist ./dist
# the shipped layers only: a config/local.yaml of the build machine (a token) stays out
COPY config/default.yaml config/production.yaml ./config/
# the spool: 0700, the node user's alone (the daemon writes its files 0600)
RUN mkdir -p /var/spool/mailbridge && chown node:node /var/spool/mailbridge && \
    chmod 0700 /var/spool/mailbridge
USER node
VOLUME ["/var/spool/mailbridge"]
EXPOSE 2525 9025
HEALTHCHECK --interval=30s --timeout=5s CMD wget -q -O /dev/null http://127.0.0.1:9025/healthz || exit 1
# SIGTERM drains: open sessions for smtp.closeTimeoutMs, then posts in flight for
# delivery.shutdownTimeoutMs. docker stop waits 10 s by default: give it more
# (docker stop -t 60, docker run --stop-timeout 60, compose's stop_grace_period).
STOPSIGNAL SIGTERM
# a small young generation: a large message's stream chunks are collected early, so one 27 MiB
# message grows the peak RSS by about its size, not about 40 (no measurable cost in throughput);
# the collector on the main thread alone: its helper threads cost more CPU than they save;
# heaps grown to twice what was live before a full collection, whatever the post thread's
# limit (13 % less CPU at 100 KiB: docs/deployment.md)
ENTRYPOINT ["dumb-init", "--", "node", "--max-semi-space-size=1", "--no-parallel-scavenge", "--heap-growing-percent=100", "dist/cli.js"]
CMD ["serve"]
