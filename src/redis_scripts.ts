/**
 * The Lua scripts of the Redis store. Redis runs each one atomically, so every compare and the
 * write that depends on it happen with no other command in between.
 *
 * A lock is a string key holding the lock's JSON, with a time to live (the lease). The JSON
 * includes a random token, so the exact value names one acquisition: renew and release compare
 * the whole value, and never touch a lock that expired and was taken again, even by the same
 * owner.
 *
 * @module
 */

/** A script and its SHA-1, which `EVALSHA` names it by. */
export interface Script {
  readonly name: string;
  readonly source: string;
  sha(): Promise<string>;
}

function script(name: string, source: string): Script {
  let sha: Promise<string> | undefined;
  return {
    name,
    source,
    sha: () => sha ??= sha1Hex(source),
  };
}

async function sha1Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * KEYS: lock key, fencing counter key. ARGV: the lock's JSON up to `"fence":` (the script
 * appends the token and the closing brace), lease in milliseconds.
 *
 * Free: the counter goes up, the lock is set with `SET NX PX`, and the reply is `{1, value}`.
 * Held: nothing changes (a failed attempt spends no token), and the reply is
 * `{0, current value, remaining lease in ms}`.
 *
 * The fencing token is the counter after `INCR`, raised to the server clock in microseconds when
 * it is below it: tokens increase with every acquisition, and keep increasing after a restart
 * that lost the counter (a server without persistence) as long as the server clock does.
 */
export const ACQUIRE: Script = script(
  "acquire",
  `if redis.replicate_commands then redis.replicate_commands() end
local current = redis.call('GET', KEYS[1])
if current then
  return {0, current, redis.call('PTTL', KEYS[1])}
end
local fence = redis.call('INCR', KEYS[2])
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
if fence < floor then
  fence = floor
  redis.call('SET', KEYS[2], string.format('%d', fence))
end
local value = ARGV[1] .. string.format('%d', fence) .. '}'
redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2])
return {1, value}`,
);

/**
 * KEYS: lock key. ARGV: the holder's exact value, lease in milliseconds.
 *
 * Compare-and-expire: when the key still holds that value, its lease restarts (`PEXPIRE`) and the
 * reply is `{1}`. Otherwise nothing changes: `{0, current value}` when someone else holds the
 * lock, `{0}` when it is gone.
 */
export const RENEW: Script = script(
  "renew",
  `local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1}
end
if current then return {0, current} end
return {0}`,
);

/**
 * KEYS: lock key. ARGV: the holder's exact value, the release channel.
 *
 * Compare-and-delete: when the key still holds that value, it is deleted, its name is published
 * on the channel (waking waiters), and the reply is `1`; otherwise nothing changes and the reply
 * is `0`.
 */
export const RELEASE: Script = script(
  "release",
  `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], KEYS[1])
  return 1
end
return 0`,
);
