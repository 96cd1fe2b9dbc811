// Serves aedes (installed with npm in the directory given first) on 127.0.0.1:PORT, for
// tests/common/foreign.rs: `node aedes.mjs /opt/mqttchat-brokers/aedes PORT`. PORT 0 picks
// a free port; the line printed once listening says which, so the test never races for
// a port. Runs until killed.
import net from 'node:net'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const [dir, port = '0'] = process.argv.slice(2)
if (!dir) {
  console.error('usage: node aedes.mjs AEDES_INSTALL_DIR [PORT]')
  process.exit(2)
}
const pkg = join(dir, 'node_modules', 'aedes')
const { version } = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'))
const { Aedes } = await import(pathToFileURL(join(pkg, 'aedes.js')).href)
const broker = await Aedes.createBroker()
const server = net.createServer(broker.handle)
server.on('error', (e) => {
  console.error(`aedes: ${e.message}`)
  process.exit(1)
})
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`aedes ${version} listening on 127.0.0.1:${server.address().port}`)
})
