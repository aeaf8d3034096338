# topai node image: the TypeScript sources run through tsx, as in a checkout.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm ci --omit=dev --no-audit --no-fund
COPY domain ./domain
COPY actors ./actors
COPY infra ./infra
COPY src ./src
COPY bin ./bin
ENTRYPOINT ["node", "--import", "tsx", "src/cli/main.ts"]
