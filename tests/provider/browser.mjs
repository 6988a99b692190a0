// A real browser for `wasm-host authconnection authorize`: Debian's headless Chromium, driven by playwright-core
// through the provider's own login and consent pages to the loopback callback. wasm-host starts it as
// $BROWSER (browser.sh) with the authorization URL; it writes what the final page said to $BROWSER_RESULT.

import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const url = process.argv[2];
const resultFile = process.env.BROWSER_RESULT;
const started = Date.now();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let result;
try {
  const page = await browser.newPage();
  await page.goto(url, { timeout: 30000 });
  for (let step = 0; step < 6 && !page.url().includes('/callback'); step += 1) {
    const login = page.locator('input[name="login"]');
    if (await login.count()) {
      await login.fill('test-user');
      await page.locator('input[name="password"]').fill('any password');
    }
    await Promise.all([
      page.waitForNavigation({ timeout: 30000 }),
      page.locator('button[type="submit"]').first().click(),
    ]);
  }
  result = { url: page.url(), text: (await page.textContent('body')) ?? '', ms: Date.now() - started };
} catch (e) {
  result = { error: String(e), ms: Date.now() - started };
} finally {
  await browser.close();
}
if (resultFile) writeFileSync(resultFile, JSON.stringify(result));
else console.log(JSON.stringify(result));
