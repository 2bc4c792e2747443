-- Fixed test credentials of the vendor endpoints (tests/emulator/VENDORS.md).
-- A plain Lua table: the emulator requires it as emu.fixtures and tests/helpers/vendors.lua
-- loads the same file with dofile, so specs and emulator always agree.
return {
  cms = {
    access_key = "cmsaktest0001",
    secret_key = "cms-sk-1qaz2wsx3edc4rfv5tgb6yhn7ujm",
  },
  iam = {
    user = "loghaul-user",
    password = "Loghaul#Passw0rd",
    domain = "loghaul-account",
    project = "cn-east-3",                         -- the scope's project name (a region)
    project_id = "0a1b2c3d4e5f40718293a4b5c6d7e8f9", -- the same project, by id
  },
  clouddc = {
    project_id = "0a1b2c3d4e5f40718293a4b5c6d7e8f9",
    access_key = "HWAKLOGHAULTEST00001",
    secret_key = "hwsk-Q2xvdWREQy1sb2doYXVsLXRlc3Qtc2Vj",
    server_id = "7d9c4f1e-3b2a-4c5d-8e9f-0a1b2c3d4e5f",
    sn = "2102313LKN10P3000123",
  },
  yeastar = {
    client_id = "loghaul-client-0001",
    client_secret = "ys-secret-8f3a2c1d9e7b6a5f4e3d2c1b",
  },
  zenlayer = {
    access_key_id = "zlak-loghaul-0001",
    access_key_password = "Zl5t9xGARNpq86cd98joQYCN3",
  },
}
