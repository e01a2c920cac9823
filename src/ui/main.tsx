import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '@xterm/xterm/css/xterm.css';
import './app.css';
import { App } from './App.tsx';
import { VmClient } from './vm-client.ts';
import { installLabApi } from './lab-api.ts';

const client = new VmClient(new URL('guest/', document.baseURI).href);
installLabApi(client);
client.start();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App client={client} />
  </StrictMode>,
);
