# syntax=docker/dockerfile:1
#
# One image for every component: the command's first argument selects the subcommand,
# as in `args: ["webhook"]`, `["aggregator"]` or `["sidecar"]`. The runtime stage holds
# Node 24, the production dependencies and the compiled JavaScript in /app/dist. No
# TypeScript loader runs in the container.
#
#   docker build -t REGISTRY/trainjob-progress:TAG .

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# The only install script among the dependencies is that of the `node` dev dependency,
# which downloads a second Node 24 for local development, and the base image has one.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
# The whole context (see .dockerignore): tsc follows the CLI's imports, including the
# demo's, into folders outside tsconfig.build.json's include list.
COPY . .
# tsc emits only JavaScript, so files that the code reads at run time (such as the
# aggregator's web page, if it has any) are copied next to the compiled modules.
RUN npm run build \
 && find cli shared webhook sidecar aggregator -type f ! -name '*.ts' \
      -exec cp --parents {} dist/ \; \
 && test -f dist/cli/main.js

FROM ${NODE_IMAGE} AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# Files stay owned by root and read-only for the runtime user, so the container also
# runs with a read-only root filesystem.
COPY --from=dependencies /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# sidecar/version.ts reads the version from package.json two folders above its module.
COPY package.json ./
# 65532 is the conventional "nonroot" UID and GID, which the chart and the webhook's
# securityContexts also set. Kubernetes' runAsNonRoot check needs a numeric user.
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
