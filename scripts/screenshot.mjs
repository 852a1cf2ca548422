#!/usr/bin/env node
// Screenshots a local SVG or HTML file with Debian's chromium through playwright-core:
//   node scripts/screenshot.mjs IN.svg|IN.html|http://… OUT.png [WIDTH]
// (how docs/topology-*.png are made; see the README's `topology` section).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';

const [input, output, width = '1600'] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node scripts/screenshot.mjs IN.svg|IN.html OUT.png [WIDTH]');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-dev-shm-usage',
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: Number(width), height: 800 } });
  // An SVG document never finishes a full-page screenshot here: wrap it in a page.
  if (input.endsWith('.svg'))
    await page.setContent(`<body style="margin:0">${readFileSync(input, 'utf8')}</body>`);
  else if (/^https?:\/\//.test(input)) {
    await page.goto(input);
    await page.waitForTimeout(1500); // a live page: let its first updates arrive
  } else await page.goto(`file://${resolve(input)}`);
  await page.screenshot({ path: output, fullPage: true });
} finally {
  await browser.close();
}
