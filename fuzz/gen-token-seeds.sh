#!/usr/bin/env bash
# Regenerates the `token` target's fixed key set and signed seeds with a NEW throw-away RSA-2048
# key (openssl): fuzz_targets/token_jwks.json (public key), fuzz_targets/token_signed.txt (every
# token signed with it, one a line) and corpus/token/seed-*. The private key only lives in a
# temporary directory and is deleted: nobody (the fuzzer included) can sign for this key set
# afterwards, so the `token` target can assert that only the listed tokens ever verify.
#
# The tokens are valid at the target's fixed clock (NOW below, 2025-06-15T15:06:40Z), for the
# target's tenant and audiences (keep them in sync with fuzz_targets/token.rs).
set -euo pipefail
cd "$(dirname "$0")"

NOW=1750000000
TENANT=72f988bf-86f1-41af-91ab-2d7cd011db47
OTHER_TENANT=0d3c1f52-8b4e-4d7a-9c1e-2f6a5b4c3d21
AUD=api://secure-export-fuzz
CLIENT_ID=6f2d1a1e-0c5b-4a53-9d43-5d4b6c7e8f90
AZMON=461e8683-5575-4561-ac7f-899cc907d62a
AZMON_GOV=f1f34126-d4ef-40e1-ad4b-bf5d47b4860d
OID=0b6e2a55-6f2c-4d3a-9b1e-3c0f5e8d7a41
KID=fuzz-seed-key
V2_ISS="https://login.microsoftonline.com/$TENANT/v2.0"
V1_ISS="https://sts.windows.net/$TENANT/"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
openssl genrsa -out "$tmp/key.pem" 2048 2>/dev/null

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
n="$(openssl rsa -in "$tmp/key.pem" -noout -modulus | sed 's/^Modulus=//' | xxd -r -p | b64url)"
printf '{"keys":[{"kty":"RSA","use":"sig","kid":"%s","n":"%s","e":"AQAB","issuer":"https://login.microsoftonline.com/{tenantid}/v2.0"}]}\n' \
  "$KID" "$n" > fuzz_targets/token_jwks.json

rm -f corpus/token/seed-* fuzz_targets/token_signed.txt
# sign NAME HEADER_JSON CLAIMS_JSON: writes the token as a seed and to the signed list, plus the
# same token as a whole Authorization header value.
sign() {
  local h p s
  h="$(printf '%s' "$2" | b64url)"
  p="$(printf '%s' "$3" | b64url)"
  s="$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign "$tmp/key.pem" -binary | b64url)"
  printf '%s.%s.%s\n' "$h" "$p" "$s" >> fuzz_targets/token_signed.txt
  printf '%s.%s.%s' "$h" "$p" "$s" > "corpus/token/seed-$1"
  printf 'Bearer %s.%s.%s' "$h" "$p" "$s" > "corpus/token/seed-$1-header"
}

HDR="{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"$KID\"}"
times="\"iat\":$((NOW - 60)),\"nbf\":$((NOW - 60)),\"exp\":$((NOW + 3540))"
v2() { # v2 claims with overrides appended (later members are NOT allowed to repeat: pass full sets)
  printf '{"aud":%s,"iss":"%s",%s,"azp":"%s","azpacr":"2","idtyp":"app","oid":"%s","roles":["ActionGroupsSecureWebhook"],"sub":"%s","tid":"%s","ver":"2.0"%s}' \
    "$1" "$2" "$times" "$3" "$OID" "$OID" "$4" "${5:-}"
}
v1() {
  printf '{"aud":"%s","iss":"%s",%s,"appid":"%s","appidacr":"2","idtyp":"app","oid":"%s","roles":["ActionGroupsSecureWebhook"],"sub":"%s","tid":"%s","ver":"1.0"}' \
    "$1" "$V1_ISS" "$times" "$AZMON" "$OID" "$OID" "$2"
}

sign v2-valid "$HDR" "$(v2 "\"$AUD\"" "$V2_ISS" "$AZMON" "$TENANT")"
sign v1-valid "$HDR" "$(v1 "$AUD" "$TENANT")"
sign v2-aud-array "$HDR" "$(v2 "[\"api://other\",\"$AUD\"]" "$V2_ISS" "$AZMON" "$TENANT")"
sign v2-aud-slash "$HDR" "$(v2 "\"$AUD/\"" "$V2_ISS" "$AZMON" "$TENANT")"
sign v2-client-id-usgov "$HDR" "$(v2 "\"$CLIENT_ID\"" "$V2_ISS" "$AZMON_GOV" "$TENANT")"
sign v2-tid-upper "$HDR" "$(v2 "\"$AUD\"" "$V2_ISS" "$AZMON" "${TENANT^^}")"
sign v2-x5t "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"x5t\":\"$KID\",\"kid\":\"$KID\"}" "$(v2 "\"$AUD\"" "$V2_ISS" "$AZMON" "$TENANT")"
sign v2-other-tenant "$HDR" "$(v2 "\"$AUD\"" "https://login.microsoftonline.com/$OTHER_TENANT/v2.0" "$AZMON" "$OTHER_TENANT")"
sign v2-wrong-aud "$HDR" "$(v2 '"api://someone-else"' "$V2_ISS" "$AZMON" "$TENANT")"
sign v2-v1-issuer "$HDR" "$(v2 "\"$AUD\"" "$V1_ISS" "$AZMON" "$TENANT")"
sign v2-wrong-caller "$HDR" "$(v2 "\"$AUD\"" "$V2_ISS" "$OID" "$TENANT")"
sign v2-scp "$HDR" "$(v2 "\"$AUD\"" "$V2_ISS" "$AZMON" "$TENANT" ',"scp":"user_impersonation"')"
sign v2-cnf "$HDR" "$(v2 "\"$AUD\"" "$V2_ISS" "$AZMON" "$TENANT" ',"cnf":{"kid":"x"}')"
sign v1-no-role "$HDR" "{\"aud\":\"$AUD\",\"iss\":\"$V1_ISS\",$times,\"appid\":\"$AZMON\",\"tid\":\"$TENANT\",\"ver\":\"1.0\"}"
sign v2-user "$HDR" "{\"aud\":\"$AUD\",\"iss\":\"$V2_ISS\",$times,\"azp\":\"$AZMON\",\"idtyp\":\"user\",\"roles\":[\"ActionGroupsSecureWebhook\"],\"tid\":\"$TENANT\",\"ver\":\"2.0\"}"
sign v2-expired "$HDR" "{\"aud\":\"$AUD\",\"iss\":\"$V2_ISS\",\"iat\":$((NOW - 7200)),\"nbf\":$((NOW - 7200)),\"exp\":$((NOW - 3600)),\"azp\":\"$AZMON\",\"roles\":[\"ActionGroupsSecureWebhook\"],\"tid\":\"$TENANT\",\"ver\":\"2.0\"}"
sign v2-too-long "$HDR" "{\"aud\":\"$AUD\",\"iss\":\"$V2_ISS\",\"iat\":$NOW,\"nbf\":$NOW,\"exp\":$((NOW + 200000)),\"azp\":\"$AZMON\",\"roles\":[\"ActionGroupsSecureWebhook\"],\"tid\":\"$TENANT\",\"ver\":\"2.0\"}"
sign v2-typ-at-jwt "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"$KID\"}" "$(v2 "\"$AUD\"" "$V2_ISS" "$AZMON" "$TENANT")"
sign v2-unknown-kid "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"rotated-away\"}" "$(v2 "\"$AUD\"" "$V2_ISS" "$AZMON" "$TENANT")"
echo "wrote $(wc -l < fuzz_targets/token_signed.txt) signed tokens"
