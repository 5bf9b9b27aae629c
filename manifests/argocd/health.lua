-- Argo CD health check for serving.djl-operator.io/DjlEndpoint.
-- Healthy: Ready=True for the current generation. Degraded: Stalled=True (nothing changes until
-- the spec does), or phase Failed while the operator is not retrying, with the reason.
-- Progressing: anything else: a missing status, and every wait the operator retries by itself
-- (Reconciling=True, e.g. InsufficientCapacity), with its reason.
local hs = {status = "Progressing", message = "Waiting for the operator to report status"}
if obj.status == nil then
  return hs
end

local function condition(kind)
  if obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  local reason = fallback
  local message = nil
  if c ~= nil then
    reason = c.reason or fallback
    message = c.message
  end
  if message == nil or message == "" then
    message = obj.status.failureReason
  end
  if message == nil or message == "" then
    return reason
  end
  return reason .. ": " .. message
end

local ready = condition("Ready")
local stalled = condition("Stalled")
local reconciling = condition("Reconciling")

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling, "Reconciling")
  return hs
end
if obj.status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = describe(ready, "Failed")
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if ready ~= nil and ready.status == "True" then
  if generation == nil or observed == generation then
    hs.status = "Healthy"
    hs.message = ready.message or "Ready"
    return hs
  end
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
if ready ~= nil then
  hs.message = describe(ready, "NotReady")
end
return hs
