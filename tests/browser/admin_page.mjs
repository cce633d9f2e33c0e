// The browser test of backspace's admin page ("Data backup"), run by tests/browser.rs against a
// real server: Debian's chromium driven by playwright-core. It signs in, shows an API error in
// plain words, starts a backup and watches the progress bar reach 100, finds the backup in the
// history, downloads and verifies it, saves a schedule and reads it back after a reload (also at
// phone width), deletes the backup through the confirmation dialog, and checks that a plain user
// sees none of it. One screenshot per step goes to BACKSPACE_ARTIFACTS.
//
// Environment:
//   BACKSPACE_TEST_NODE_MODULES  the node_modules directory that holds playwright-core
//   BACKSPACE_URL                the server's base URL
//   BACKSPACE_ADMIN_EMAIL / BACKSPACE_ADMIN_PASSWORD   a portal admin (the owner)
//   BACKSPACE_USER_EMAIL / BACKSPACE_USER_PASSWORD     a plain user
//   BACKSPACE_ROOM_TITLE         a room the schedule stores its backups in
//   BACKSPACE_LOCAL_FORBIDDEN    a directory outside the allowed Local roots (for the error step)
//   BACKSPACE_ARTIFACTS          where screenshots and the downloaded archive go
//   BACKSPACE_CHROMIUM           the browser (default /usr/bin/chromium)

import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === "") {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return v;
}

const nodeModules = env("BACKSPACE_TEST_NODE_MODULES");
const require = createRequire(path.join(path.resolve(nodeModules), "..", "package.json"));
const { chromium } = require("playwright-core");

const base = env("BACKSPACE_URL").replace(/\/$/, "");
const admin = { email: env("BACKSPACE_ADMIN_EMAIL"), password: env("BACKSPACE_ADMIN_PASSWORD") };
const user = { email: env("BACKSPACE_USER_EMAIL"), password: env("BACKSPACE_USER_PASSWORD") };
const roomTitle = env("BACKSPACE_ROOM_TITLE");
const forbiddenDir = env("BACKSPACE_LOCAL_FORBIDDEN", "/etc");
const artifacts = path.resolve(env("BACKSPACE_ARTIFACTS"));
const executablePath = env("BACKSPACE_CHROMIUM", "/usr/bin/chromium");
fs.mkdirSync(artifacts, { recursive: true });

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 375, height: 812 };

let stepNo = 0;
let page;

function check(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

async function step(name, body) {
  stepNo += 1;
  const label = `${String(stepNo).padStart(2, "0")}-${name}`;
  const started = Date.now();
  try {
    await body();
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(artifacts, `${label}-FAILED.png`), fullPage: true }).catch(() => {});
    console.error(`STEP ${label} FAILED: ${e && e.stack ? e.stack : e}`);
    throw e;
  }
  await page.screenshot({ path: path.join(artifacts, `${label}.png`), fullPage: true });
  console.log(`STEP ${label} ok (${Date.now() - started} ms)`);
}

// Waits until `locator`'s attribute equals `value` (Playwright's auto-waiting, no sleeps).
async function waitAttr(locator, attr, value, timeout = 30000) {
  const handle = await locator.elementHandle({ timeout });
  await page.waitForFunction(([el, a, v]) => el.getAttribute(a) === v, [handle, attr, value], { timeout });
}

async function signIn(who) {
  const form = page.getByRole("region", { name: "Sign in" });
  await form.getByRole("textbox", { name: "E-mail", exact: true }).fill(who.email);
  await form.getByLabel("Password", { exact: true }).fill(who.password);
  await form.getByRole("button", { name: "Sign in", exact: true }).click();
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(20000);
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  await step("sign-in-form", async () => {
    await page.goto(base + "/");
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    // A wrong password is reported in plain words.
    await signIn({ email: admin.email, password: "not-the-password" });
    await page.getByRole("alert").filter({ hasText: "The e-mail or the password is wrong." }).waitFor();
  });

  await step("signed-in", async () => {
    await signIn(admin);
    await page.getByRole("heading", { name: "Data backup", level: 1 }).waitFor();
    for (const h of ["Manual backup", "Automatic backup", "Backup history", "Restore"]) {
      await page.getByRole("heading", { name: h, exact: true }).waitFor();
    }
    await page.getByText("No backups yet.").waitFor();
  });

  const manual = page.getByRole("region", { name: "Manual backup" });

  await step("api-error-shown", async () => {
    await manual.getByRole("radio", { name: "Local directory" }).check();
    await manual.getByLabel("Directory on the server").fill(forbiddenDir);
    await manual.getByRole("button", { name: "Create backup" }).click();
    const alert = page.getByRole("alert").filter({ hasText: "outside the directories allowed" });
    await alert.waitFor();
    check(!(await manual.getByRole("link", { name: "Download backup" }).isVisible()), "no download after a refused backup");
  });

  let fileName;
  await step("backup-complete", async () => {
    await manual.getByRole("radio", { name: "Temporary storage" }).check();
    check(await manual.getByLabel("Directory on the server").isHidden(), "the directory field hides for temporary storage");
    const started = page.waitForResponse((r) => r.url().includes("/api/2.0/backup/startbackup") && r.request().method() === "POST");
    await manual.getByRole("button", { name: "Create backup" }).click();
    const resp = await started;
    check(resp.status() === 200, `startbackup answered ${resp.status()}`);
    const bar = manual.getByRole("progressbar", { name: "Backup progress" });
    await bar.waitFor();
    await waitAttr(bar, "aria-valuenow", "100");
    await manual.getByText("100%", { exact: true }).waitFor();
    await manual.getByText("Backup completed", { exact: true }).waitFor();
    await manual.getByRole("link", { name: "Download backup" }).waitFor();
  });

  const history = page.getByRole("region", { name: "Backup history" });
  await step("history", async () => {
    const rows = history.getByRole("row").filter({ has: page.getByRole("cell") });
    await rows.first().waitFor();
    check((await rows.count()) === 1, `one backup in the history, not ${await rows.count()}`);
    fileName = (await rows.first().getByRole("cell").first().innerText()).trim();
    check(/\.tar(\.zst|\.gz)?$/.test(fileName), `a backup archive name, not ${JSON.stringify(fileName)}`);
    const text = await rows.first().innerText();
    check(text.includes("Temporary"), `the storage column says Temporary: ${text}`);
  });

  await step("downloaded", async () => {
    const row = history.getByRole("row").filter({ hasText: fileName });
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      row.getByRole("link", { name: `Download ${fileName}` }).click(),
    ]);
    check(download.suggestedFilename() === fileName, `downloaded ${download.suggestedFilename()}, expected ${fileName}`);
    const saved = path.join(artifacts, fileName);
    await download.saveAs(saved);
    const bytes = fs.readFileSync(saved);
    check(bytes.length > 64, `the archive has ${bytes.length} bytes`);
    const zstd = bytes.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    const gzip = bytes[0] === 0x1f && bytes[1] === 0x8b;
    const tar = bytes.subarray(257, 262).toString("latin1") === "ustar";
    check(zstd || gzip || tar, `the archive starts with a zstd, gzip or tar magic: ${bytes.subarray(0, 8).toString("hex")}`);
    console.log(`downloaded ${fileName}: ${bytes.length} bytes`);
    // Verify it on the server too.
    await row.getByRole("button", { name: `Verify ${fileName}` }).click();
    await page.getByRole("status").filter({ hasText: `${fileName} is intact` }).waitFor();
  });

  const auto = page.getByRole("region", { name: "Automatic backup" });
  await step("schedule-saved", async () => {
    await auto.getByText("No schedule is set.").waitFor();
    await auto.getByLabel("Repeat").selectOption({ label: "Every week" });
    await auto.getByLabel("Day of the week").selectOption({ label: "Wednesday" });
    await auto.getByLabel("Time (server time)").selectOption({ label: "04:00" });
    await auto.getByLabel("Backups kept").fill("7");
    await auto.getByRole("radio", { name: "Room or folder" }).check();
    await auto.getByLabel("Room", { exact: true }).selectOption({ label: roomTitle });
    const saved = page.waitForResponse((r) => r.url().includes("/api/2.0/backup/createbackupschedule"));
    await auto.getByRole("button", { name: "Save schedule" }).click();
    check((await saved).status() === 200, "createbackupschedule answered 200");
    await page.getByRole("status").filter({ hasText: "The schedule is saved." }).waitFor();
    await auto.getByText("Every week on Wednesday at 04:00, keeping 7 backups").waitFor();
  });

  await step("schedule-after-reload-phone", async () => {
    await page.setViewportSize(PHONE);
    await page.reload();
    const summary = auto.getByText("Every week on Wednesday at 04:00, keeping 7 backups");
    await summary.waitFor();
    const text = await summary.innerText();
    check(text.includes(`in the room “${roomTitle}”`), `the summary names the room: ${text}`);
    check(/Next backup: \d{4}-\d\d-\d\d \d\d:\d\d/.test(text), `the summary gives the next run: ${text}`);
    check((await auto.getByLabel("Repeat").inputValue()) === "1", "Repeat reads back as Every week");
    check((await auto.getByLabel("Day of the week").inputValue()) === "4", "the weekday reads back as Wednesday");
    check((await auto.getByLabel("Time (server time)").inputValue()) === "4", "the hour reads back as 04:00");
    check((await auto.getByLabel("Backups kept").inputValue()) === "7", "backups kept reads back as 7");
    check(await auto.getByRole("radio", { name: "Room or folder" }).isChecked(), "the storage reads back as a room");
    check((await auto.getByLabel("Room", { exact: true }).locator("option:checked").innerText()) === roomTitle, "the room reads back");
    await auto.getByRole("button", { name: "Delete schedule" }).waitFor();
    // Nothing overflows sideways at phone width.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `the page is ${overflow}px wider than the phone screen`);
    await auto.scrollIntoViewIfNeeded();
  });

  await step("history-phone", async () => {
    await history.getByRole("row").filter({ hasText: fileName }).waitFor();
    await history.scrollIntoViewIfNeeded();
    await page.setViewportSize(DESKTOP);
  });

  await step("delete-confirm-dialog", async () => {
    const row = history.getByRole("row").filter({ hasText: fileName });
    await row.getByRole("button", { name: `Delete ${fileName}` }).click();
    const dialog = page.getByRole("dialog", { name: "Delete the backup?" });
    await dialog.waitFor();
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden" });
    check(await row.isVisible(), "cancelling keeps the backup");
    await row.getByRole("button", { name: `Delete ${fileName}` }).click();
    await dialog.waitFor();
  });

  await step("backup-deleted", async () => {
    const dialog = page.getByRole("dialog", { name: "Delete the backup?" });
    const deleted = page.waitForResponse((r) => r.url().includes("/api/2.0/backup/deletebackup/"));
    await dialog.getByRole("button", { name: "Delete" }).click();
    check((await deleted).status() === 200, "deletebackup answered 200");
    await history.getByText("No backups yet.").waitFor();
    check((await history.getByRole("row").filter({ hasText: fileName }).count()) === 0, "the row is gone");
    await page.reload();
    await history.getByText("No backups yet.").waitFor();
  });

  await step("plain-user-denied", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await signIn(user);
    await page.getByText("The backup settings are for portal admins only.").waitFor();
    for (const h of ["Manual backup", "Automatic backup", "Backup history", "Restore"]) {
      check((await page.getByRole("heading", { name: h, exact: true }).count()) === 0, `a plain user sees no ${h}`);
    }
    for (const b of ["Create backup", "Save schedule", "Restore from file"]) {
      check((await page.getByRole("button", { name: b }).count()) === 0, `a plain user has no ${b} button`);
    }
    check((await page.getByRole("progressbar").count()) === 0, "a plain user sees no progress bar");
    await page.reload();
    await page.getByText("The backup settings are for portal admins only.").waitFor();
    check((await page.getByRole("button", { name: "Create backup" }).count()) === 0, "still nothing after a reload");
  });

  check(consoleErrors.length === 0, `the page threw: ${consoleErrors.join("; ")}`);
  console.log(`ALL STEPS PASSED (${stepNo}); screenshots in ${artifacts}`);
} catch (e) {
  failed = true;
  console.error(`browser test failed: ${e && e.message ? e.message : e}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
