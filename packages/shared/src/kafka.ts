/**
 * `@faceflow/shared/kafka`: the Kafka adapter, kept out of the package root so that code which only needs
 * the contracts (the engine, the one-process mode) never loads kafkajs.
 */
export * from './bus/kafka-bus.js';
export * from './bus/kafka-lag.js';
