"""The ops a pure inference graph may run: everything else is refused before anything runs.

A frozen .pb, a checkpoint's graph or a SavedModel is a program. An op outside this list may
read, write, list or delete files, run Python, or talk to the network (tf.data, readers and
savers, summary writers, PyFunc, collectives, ...); ``safety.py`` refuses a model that would
run one (``--allow-ops A,B`` or ``--allow-unsafe-ops`` override) and ``inspect`` lists it.

The groups were derived from TensorFlow 2.21's op registry by the ``gen_*_ops`` module that
defines each op, keeping the modules whose ops compute on tensors in memory and leaving out
the few of their ops that touch files or other processes (listed below each group). A test
checks that every name here is a registered op. New TensorFlow releases: an op that is not
listed is refused (fail closed) until it is added to its group here with its reason; the
test fails when a listed op disappears, so an upgrade shows up as a test failure.
No TensorFlow here.
"""

from __future__ import annotations

# arithmetic, comparisons, reductions and matmuls on tensors
MATH = frozenset(
    [
        "Abs",
        "AccumulateNV2",
        "Acos",
        "Acosh",
        "Add",
        "AddN",
        "AddV2",
        "All",
        "Angle",
        "Any",
        "ApproximateEqual",
        "ArgMax",
        "ArgMin",
        "Asin",
        "Asinh",
        "Atan",
        "Atan2",
        "Atanh",
        "BatchMatMul",
        "BatchMatMulV2",
        "BatchMatMulV3",
        "Betainc",
        "Bincount",
        "Bucketize",
        "Cast",
        "Ceil",
        "ClipByValue",
        "Complex",
        "ComplexAbs",
        "Conj",
        "Cos",
        "Cosh",
        "Cross",
        "Cumprod",
        "Cumsum",
        "CumulativeLogsumexp",
        "DenseBincount",
        "Digamma",
        "Div",
        "DivNoNan",
        "Equal",
        "Erf",
        "Erfc",
        "Erfinv",
        "EuclideanNorm",
        "Exp",
        "Expm1",
        "Floor",
        "FloorDiv",
        "FloorMod",
        "Greater",
        "GreaterEqual",
        "HistogramFixedWidth",
        "Igamma",
        "IgammaGradA",
        "Igammac",
        "Imag",
        "Inv",
        "InvGrad",
        "IsFinite",
        "IsInf",
        "IsNan",
        "Less",
        "LessEqual",
        "Lgamma",
        "LinSpace",
        "Log",
        "Log1p",
        "LogicalAnd",
        "LogicalNot",
        "LogicalOr",
        "MatMul",
        "Max",
        "Maximum",
        "Mean",
        "Min",
        "Minimum",
        "Mod",
        "Mul",
        "MulNoNan",
        "Ndtri",
        "Neg",
        "NextAfter",
        "NotEqual",
        "Polygamma",
        "Pow",
        "Prod",
        "QuantizeDownAndShrinkRange",
        "QuantizedAdd",
        "QuantizedMatMul",
        "QuantizedMul",
        "RaggedBincount",
        "Range",
        "Real",
        "RealDiv",
        "Reciprocal",
        "ReciprocalGrad",
        "RequantizationRange",
        "RequantizationRangePerChannel",
        "Requantize",
        "RequantizePerChannel",
        "Rint",
        "Round",
        "Rsqrt",
        "RsqrtGrad",
        "SegmentMax",
        "SegmentMaxV2",
        "SegmentMean",
        "SegmentMin",
        "SegmentMinV2",
        "SegmentProd",
        "SegmentProdV2",
        "SegmentSum",
        "SegmentSumV2",
        "Select",
        "SelectV2",
        "Sigmoid",
        "SigmoidGrad",
        "Sign",
        "Sin",
        "Sinh",
        "SobolSample",
        "SparseBincount",
        "SparseMatMul",
        "SparseSegmentMean",
        "SparseSegmentMeanGrad",
        "SparseSegmentMeanGradV2",
        "SparseSegmentMeanWithNumSegments",
        "SparseSegmentSqrtN",
        "SparseSegmentSqrtNGrad",
        "SparseSegmentSqrtNGradV2",
        "SparseSegmentSqrtNWithNumSegments",
        "SparseSegmentSum",
        "SparseSegmentSumGrad",
        "SparseSegmentSumGradV2",
        "SparseSegmentSumWithNumSegments",
        "Sqrt",
        "SqrtGrad",
        "Square",
        "SquaredDifference",
        "Sub",
        "Sum",
        "Tan",
        "Tanh",
        "TanhGrad",
        "TruncateDiv",
        "TruncateMod",
        "UnsortedSegmentMax",
        "UnsortedSegmentMin",
        "UnsortedSegmentProd",
        "UnsortedSegmentSum",
        "Xdivy",
        "Xlog1py",
        "Xlogy",
        "Zeta",
    ]
)


# shapes, slicing, gathering, concatenation, casts (ImmutableConst excluded: it memory-maps a file)
ARRAY = frozenset(
    [
        "BatchMatrixBandPart",
        "BatchMatrixDiag",
        "BatchMatrixDiagPart",
        "BatchMatrixSetDiag",
        "BatchToSpace",
        "BatchToSpaceND",
        "Bitcast",
        "BroadcastArgs",
        "BroadcastGradientArgs",
        "BroadcastTo",
        "CheckNumerics",
        "CheckNumericsV2",
        "Concat",
        "ConcatOffset",
        "ConcatV2",
        "ConjugateTranspose",
        "Const",
        "DebugGradientIdentity",
        "DebugGradientRefIdentity",
        "DeepCopy",
        "DepthToSpace",
        "Dequantize",
        "Diag",
        "DiagPart",
        "EditDistance",
        "Empty",
        "EnsureShape",
        "ExpandDims",
        "ExtractImagePatches",
        "ExtractVolumePatches",
        "FakeQuantWithMinMaxArgs",
        "FakeQuantWithMinMaxArgsGradient",
        "FakeQuantWithMinMaxVars",
        "FakeQuantWithMinMaxVarsGradient",
        "FakeQuantWithMinMaxVarsPerChannel",
        "FakeQuantWithMinMaxVarsPerChannelGradient",
        "Fill",
        "Fingerprint",
        "Gather",
        "GatherNd",
        "GatherV2",
        "GuaranteeConst",
        "Identity",
        "IdentityN",
        "InplaceAdd",
        "InplaceSub",
        "InplaceUpdate",
        "InvertPermutation",
        "ListDiff",
        "LowerBound",
        "MatrixBandPart",
        "MatrixDiag",
        "MatrixDiagPart",
        "MatrixDiagPartV2",
        "MatrixDiagPartV3",
        "MatrixDiagV2",
        "MatrixDiagV3",
        "MatrixSetDiag",
        "MatrixSetDiagV2",
        "MatrixSetDiagV3",
        "MirrorPad",
        "MirrorPadGrad",
        "OneHot",
        "OnesLike",
        "Pack",
        "Pad",
        "PadV2",
        "ParallelConcat",
        "Placeholder",
        "PlaceholderV2",
        "PlaceholderWithDefault",
        "PreventGradient",
        "QuantizeAndDequantize",
        "QuantizeAndDequantizeV2",
        "QuantizeAndDequantizeV3",
        "QuantizeAndDequantizeV4",
        "QuantizeAndDequantizeV4Grad",
        "QuantizeV2",
        "QuantizedConcat",
        "QuantizedInstanceNorm",
        "QuantizedReshape",
        "Rank",
        "RefIdentity",
        "Reshape",
        "ResourceStridedSliceAssign",
        "Reverse",
        "ReverseSequence",
        "ReverseV2",
        "ScatterNd",
        "ScatterNdNonAliasingAdd",
        "Shape",
        "ShapeN",
        "Size",
        "Slice",
        "Snapshot",
        "SpaceToBatch",
        "SpaceToBatchND",
        "SpaceToDepth",
        "Split",
        "SplitV",
        "Squeeze",
        "StopGradient",
        "StridedSlice",
        "StridedSliceAssign",
        "StridedSliceGrad",
        "TensorScatterAdd",
        "TensorScatterMax",
        "TensorScatterMin",
        "TensorScatterSub",
        "TensorScatterUpdate",
        "TensorStridedSliceUpdate",
        "Tile",
        "TileGrad",
        "Transpose",
        "Unique",
        "UniqueV2",
        "UniqueWithCounts",
        "UniqueWithCountsV2",
        "Unpack",
        "UnravelIndex",
        "UpperBound",
        "Where",
        "ZerosLike",
    ]
)


# convolutions, pooling, activations, normalisation
NN = frozenset(
    [
        "ApproxTopK",
        "AvgPool",
        "AvgPool3D",
        "AvgPool3DGrad",
        "AvgPoolGrad",
        "BatchNormWithGlobalNormalization",
        "BatchNormWithGlobalNormalizationGrad",
        "BiasAdd",
        "BiasAddGrad",
        "BiasAddV1",
        "Conv",
        "Conv2D",
        "Conv2DBackpropFilter",
        "Conv2DBackpropFilterV2",
        "Conv2DBackpropInput",
        "Conv2DBackpropInputV2",
        "Conv3D",
        "Conv3DBackpropFilter",
        "Conv3DBackpropFilterV2",
        "Conv3DBackpropInput",
        "Conv3DBackpropInputV2",
        "DataFormatDimMap",
        "DataFormatVecPermute",
        "DepthwiseConv2dNative",
        "DepthwiseConv2dNativeBackpropFilter",
        "DepthwiseConv2dNativeBackpropInput",
        "Dilation2D",
        "Dilation2DBackpropFilter",
        "Dilation2DBackpropInput",
        "Elu",
        "EluGrad",
        "FractionalAvgPool",
        "FractionalAvgPoolGrad",
        "FractionalMaxPool",
        "FractionalMaxPoolGrad",
        "FusedBatchNorm",
        "FusedBatchNormGrad",
        "FusedBatchNormGradV2",
        "FusedBatchNormGradV3",
        "FusedBatchNormV2",
        "FusedBatchNormV3",
        "FusedPadConv2D",
        "FusedResizeAndPadConv2D",
        "InTopK",
        "InTopKV2",
        "IsotonicRegression",
        "L2Loss",
        "LRN",
        "LRNGrad",
        "LeakyRelu",
        "LeakyReluGrad",
        "LogSoftmax",
        "MaxPool",
        "MaxPool3D",
        "MaxPool3DGrad",
        "MaxPool3DGradGrad",
        "MaxPoolGrad",
        "MaxPoolGradGrad",
        "MaxPoolGradGradV2",
        "MaxPoolGradGradWithArgmax",
        "MaxPoolGradV2",
        "MaxPoolGradWithArgmax",
        "MaxPoolV2",
        "MaxPoolWithArgmax",
        "NthElement",
        "QuantizedAvgPool",
        "QuantizedBatchNormWithGlobalNormalization",
        "QuantizedBiasAdd",
        "QuantizedConv2D",
        "QuantizedConv2DAndRelu",
        "QuantizedConv2DAndReluAndRequantize",
        "QuantizedConv2DAndRequantize",
        "QuantizedConv2DPerChannel",
        "QuantizedConv2DWithBias",
        "QuantizedConv2DWithBiasAndRelu",
        "QuantizedConv2DWithBiasAndReluAndRequantize",
        "QuantizedConv2DWithBiasAndRequantize",
        "QuantizedConv2DWithBiasSignedSumAndReluAndRequantize",
        "QuantizedConv2DWithBiasSumAndRelu",
        "QuantizedConv2DWithBiasSumAndReluAndRequantize",
        "QuantizedDepthwiseConv2D",
        "QuantizedDepthwiseConv2DWithBias",
        "QuantizedDepthwiseConv2DWithBiasAndRelu",
        "QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize",
        "QuantizedMatMulWithBias",
        "QuantizedMatMulWithBiasAndDequantize",
        "QuantizedMatMulWithBiasAndRelu",
        "QuantizedMatMulWithBiasAndReluAndRequantize",
        "QuantizedMatMulWithBiasAndRequantize",
        "QuantizedMaxPool",
        "QuantizedRelu",
        "QuantizedRelu6",
        "QuantizedReluX",
        "Relu",
        "Relu6",
        "Relu6Grad",
        "ReluGrad",
        "Selu",
        "SeluGrad",
        "Softmax",
        "SoftmaxCrossEntropyWithLogits",
        "Softplus",
        "SoftplusGrad",
        "Softsign",
        "SoftsignGrad",
        "SparseSoftmaxCrossEntropyWithLogits",
        "TopK",
        "TopKV2",
    ]
)


# image resizing, colour conversion, decoding/encoding of image bytes held in tensors
IMAGE = frozenset(
    [
        "AdjustContrast",
        "AdjustContrastv2",
        "AdjustHue",
        "AdjustSaturation",
        "CombinedNonMaxSuppression",
        "CropAndResize",
        "CropAndResizeGradBoxes",
        "CropAndResizeGradImage",
        "DecodeAndCropJpeg",
        "DecodeBmp",
        "DecodeGif",
        "DecodeImage",
        "DecodeJpeg",
        "DecodeJxl",
        "DecodePng",
        "DecodeWebP",
        "DrawBoundingBoxes",
        "DrawBoundingBoxesV2",
        "EncodeJpeg",
        "EncodeJpegVariableQuality",
        "EncodePng",
        "ExtractGlimpse",
        "ExtractGlimpseV2",
        "ExtractJpegShape",
        "GenerateBoundingBoxProposals",
        "HSVToRGB",
        "ImageProjectiveTransformV2",
        "ImageProjectiveTransformV3",
        "NonMaxSuppression",
        "NonMaxSuppressionV2",
        "NonMaxSuppressionV3",
        "NonMaxSuppressionV4",
        "NonMaxSuppressionV5",
        "NonMaxSuppressionWithOverlaps",
        "QuantizedResizeBilinear",
        "RGBToHSV",
        "RandomCrop",
        "ResizeArea",
        "ResizeBicubic",
        "ResizeBicubicGrad",
        "ResizeBilinear",
        "ResizeBilinearGrad",
        "ResizeNearestNeighbor",
        "ResizeNearestNeighborGrad",
        "SampleDistortedBoundingBox",
        "SampleDistortedBoundingBoxV2",
        "ScaleAndTranslate",
        "ScaleAndTranslateGrad",
        "StatelessSampleDistortedBoundingBox",
    ]
)


# linear algebra
LINALG = frozenset(
    [
        "BandedTriangularSolve",
        "BatchCholesky",
        "BatchCholeskyGrad",
        "BatchMatrixDeterminant",
        "BatchMatrixInverse",
        "BatchMatrixSolve",
        "BatchMatrixSolveLs",
        "BatchMatrixTriangularSolve",
        "BatchSelfAdjointEig",
        "BatchSelfAdjointEigV2",
        "BatchSvd",
        "Cholesky",
        "CholeskyGrad",
        "Eig",
        "Einsum",
        "LogMatrixDeterminant",
        "Lu",
        "MatrixDeterminant",
        "MatrixExponential",
        "MatrixInverse",
        "MatrixLogarithm",
        "MatrixSolve",
        "MatrixSolveLs",
        "MatrixSquareRoot",
        "MatrixTriangularSolve",
        "Qr",
        "SelfAdjointEig",
        "SelfAdjointEigV2",
        "Svd",
        "TridiagonalMatMul",
        "TridiagonalSolve",
    ]
)


# FFTs
SPECTRAL = frozenset(
    [
        "BatchFFT",
        "BatchFFT2D",
        "BatchFFT3D",
        "BatchIFFT",
        "BatchIFFT2D",
        "BatchIFFT3D",
        "FFT",
        "FFT2D",
        "FFT3D",
        "FFTND",
        "IFFT",
        "IFFT2D",
        "IFFT3D",
        "IFFTND",
        "IRFFT",
        "IRFFT2D",
        "IRFFT3D",
        "IRFFTND",
        "RFFT",
        "RFFT2D",
        "RFFT3D",
        "RFFTND",
    ]
)


# special functions
SPECIAL_MATH = frozenset(
    [
        "BesselI0",
        "BesselI0e",
        "BesselI1",
        "BesselI1e",
        "BesselJ0",
        "BesselJ1",
        "BesselK0",
        "BesselK0e",
        "BesselK1",
        "BesselK1e",
        "BesselY0",
        "BesselY1",
        "Dawsn",
        "Expint",
        "FresnelCos",
        "FresnelSin",
        "Spence",
    ]
)


# bitwise arithmetic
BITWISE = frozenset(
    [
        "BitwiseAnd",
        "BitwiseOr",
        "BitwiseXor",
        "Invert",
        "LeftShift",
        "PopulationCount",
        "RightShift",
    ]
)


# sparse tensors
SPARSE = frozenset(
    [
        "AddManySparseToTensorsMap",
        "AddSparseToTensorsMap",
        "DeserializeManySparse",
        "DeserializeSparse",
        "SerializeManySparse",
        "SerializeSparse",
        "SparseAdd",
        "SparseAddGrad",
        "SparseConcat",
        "SparseCross",
        "SparseCrossHashed",
        "SparseCrossV2",
        "SparseDenseCwiseAdd",
        "SparseDenseCwiseDiv",
        "SparseDenseCwiseMul",
        "SparseFillEmptyRows",
        "SparseFillEmptyRowsGrad",
        "SparseReduceMax",
        "SparseReduceMaxSparse",
        "SparseReduceSum",
        "SparseReduceSumSparse",
        "SparseReorder",
        "SparseReshape",
        "SparseSlice",
        "SparseSliceGrad",
        "SparseSoftmax",
        "SparseSparseMaximum",
        "SparseSparseMinimum",
        "SparseSplit",
        "SparseTensorDenseAdd",
        "SparseTensorDenseMatMul",
        "SparseToDense",
        "TakeManySparseFromTensorsMap",
    ]
)


# set operations on tensors
SET = frozenset(
    [
        "DenseToDenseSetOperation",
        "DenseToSparseSetOperation",
        "SetSize",
        "SparseToSparseSetOperation",
    ]
)


# roll
MANIP = frozenset(["Roll"])


# ragged tensors
RAGGED_ARRAY = frozenset(
    ["RaggedCross", "RaggedFillEmptyRows", "RaggedFillEmptyRowsGrad", "RaggedGather"]
)


# ragged tensors
RAGGED_CONVERSION = frozenset(
    [
        "RaggedTensorFromVariant",
        "RaggedTensorToSparse",
        "RaggedTensorToTensor",
        "RaggedTensorToVariant",
        "RaggedTensorToVariantGradient",
    ]
)


# ragged tensors
RAGGED_MATH = frozenset(["RaggedRange"])


# string manipulation of tensors (no I/O)
STRING = frozenset(
    [
        "AsString",
        "DecodeBase64",
        "EncodeBase64",
        "ReduceJoin",
        "RegexFullMatch",
        "RegexReplace",
        "StaticRegexFullMatch",
        "StaticRegexReplace",
        "StringFormat",
        "StringJoin",
        "StringLength",
        "StringLower",
        "StringNGrams",
        "StringSplit",
        "StringSplitV2",
        "StringStrip",
        "StringToHashBucket",
        "StringToHashBucketFast",
        "StringToHashBucketStrong",
        "StringUpper",
        "Substr",
        "UnicodeDecode",
        "UnicodeDecodeWithOffsets",
        "UnicodeEncode",
        "UnicodeScript",
        "UnicodeTranscode",
        "UnsortedSegmentJoin",
    ]
)


# parsing tf.Example / CSV / raw bytes held in tensors
PARSING = frozenset(
    [
        "DecodeCSV",
        "DecodeCompressed",
        "DecodeJSONExample",
        "DecodePaddedRaw",
        "DecodeRaw",
        "ParseExample",
        "ParseExampleV2",
        "ParseSequenceExample",
        "ParseSequenceExampleV2",
        "ParseSingleExample",
        "ParseSingleSequenceExample",
        "ParseTensor",
        "SerializeTensor",
        "StringToNumber",
    ]
)


# v1 control flow (Switch, Merge, loops)
CONTROL_FLOW = frozenset(
    [
        "ControlTrigger",
        "Enter",
        "Exit",
        "LoopCond",
        "Merge",
        "NextIteration",
        "NoOp",
        "RefEnter",
        "RefExit",
        "RefMerge",
        "RefNextIteration",
        "RefSelect",
        "RefSwitch",
        "Switch",
    ]
)


# v2 control flow and function calls (bodies are checked too; RemoteCall excluded)
FUNCTIONAL = frozenset(
    [
        "Case",
        "DeviceIndex",
        "FakeParam",
        "For",
        "If",
        "PartitionedCall",
        "StatefulPartitionedCall",
        "StatelessCase",
        "StatelessIf",
        "StatelessWhile",
        "SymbolicGradient",
        "ToBool",
        "While",
    ]
)


# TensorLists
LIST = frozenset(
    [
        "EmptyTensorList",
        "TensorListConcat",
        "TensorListConcatLists",
        "TensorListConcatV2",
        "TensorListElementShape",
        "TensorListFromTensor",
        "TensorListGather",
        "TensorListGetItem",
        "TensorListLength",
        "TensorListPopBack",
        "TensorListPushBack",
        "TensorListPushBackBatch",
        "TensorListReserve",
        "TensorListResize",
        "TensorListScatter",
        "TensorListScatterIntoExistingList",
        "TensorListScatterV2",
        "TensorListSetItem",
        "TensorListSplit",
        "TensorListStack",
    ]
)


# TensorMaps
MAP = frozenset(
    [
        "EmptyTensorMap",
        "TensorMapErase",
        "TensorMapHasKey",
        "TensorMapInsert",
        "TensorMapLookup",
        "TensorMapSize",
        "TensorMapStackKeys",
    ]
)


# random numbers
RANDOM = frozenset(
    [
        "Multinomial",
        "ParameterizedTruncatedNormal",
        "RandomGamma",
        "RandomGammaGrad",
        "RandomPoisson",
        "RandomPoissonV2",
        "RandomShuffle",
        "RandomStandardNormal",
        "RandomUniform",
        "RandomUniformInt",
        "TruncatedNormal",
    ]
)


# random numbers
STATELESS_RANDOM = frozenset(
    [
        "StatelessMultinomial",
        "StatelessParameterizedTruncatedNormal",
        "StatelessRandomBinomial",
        "StatelessRandomGammaV2",
        "StatelessRandomNormal",
        "StatelessRandomPoisson",
        "StatelessRandomUniform",
        "StatelessRandomUniformFullInt",
        "StatelessRandomUniformInt",
        "StatelessTruncatedNormal",
    ]
)


# random numbers
STATELESS_RANDOM_V2 = frozenset(
    [
        "StatelessRandomGammaV3",
        "StatelessRandomGetAlg",
        "StatelessRandomGetKeyCounter",
        "StatelessRandomGetKeyCounterAlg",
        "StatelessRandomNormalV2",
        "StatelessRandomUniformFullIntV2",
        "StatelessRandomUniformIntV2",
        "StatelessRandomUniformV2",
        "StatelessShuffle",
        "StatelessTruncatedNormalV2",
    ]
)


# random numbers
STATEFUL_RANDOM = frozenset(
    [
        "NonDeterministicInts",
        "RngReadAndSkip",
        "RngSkip",
        "StatefulRandomBinomial",
        "StatefulStandardNormal",
        "StatefulStandardNormalV2",
        "StatefulTruncatedNormal",
        "StatefulUniform",
        "StatefulUniformFullInt",
        "StatefulUniformInt",
    ]
)


# random numbers
RANDOM_INDEX_SHUFFLE = frozenset(["RandomIndexShuffle"])


# counting/bincount
COUNT = frozenset(["DenseCountSparseOutput", "RaggedCountSparseOutput", "SparseCountSparseOutput"])


# CTC decoding
CTC = frozenset(["CTCBeamSearchDecoder", "CTCGreedyDecoder", "CTCLoss", "CTCLossV2"])


# candidate sampling
CANDIDATE_SAMPLING = frozenset(
    [
        "AllCandidateSampler",
        "ComputeAccidentalHits",
        "FixedUnigramCandidateSampler",
        "LearnedUnigramCandidateSampler",
        "LogUniformCandidateSampler",
        "ThreadUnsafeUnigramCandidateSampler",
        "UniformCandidateSampler",
    ]
)


# spectrograms and WAV bytes held in tensors
AUDIO = frozenset(["AudioSpectrogram", "DecodeWav", "EncodeWav", "Mfcc"])


# fused RNN cells
RNN = frozenset(
    [
        "BlockLSTM",
        "BlockLSTMGrad",
        "BlockLSTMGradV2",
        "BlockLSTMV2",
        "GRUBlockCell",
        "GRUBlockCellGrad",
        "LSTMBlockCell",
        "LSTMBlockCellGrad",
    ]
)


# fused RNN cells
CUDNN_RNN = frozenset(
    [
        "CudnnRNN",
        "CudnnRNNBackprop",
        "CudnnRNNBackpropV2",
        "CudnnRNNBackpropV3",
        "CudnnRNNCanonicalToParams",
        "CudnnRNNCanonicalToParamsV2",
        "CudnnRNNParamsSize",
        "CudnnRNNParamsToCanonical",
        "CudnnRNNParamsToCanonicalV2",
        "CudnnRNNV2",
        "CudnnRNNV3",
    ]
)


# quantized arithmetic
UNIFORM_QUANT = frozenset(
    [
        "UniformDequantize",
        "UniformQuantize",
        "UniformQuantizedAdd",
        "UniformQuantizedClipByValue",
        "UniformQuantizedConvolution",
        "UniformQuantizedConvolutionHybrid",
        "UniformQuantizedDot",
        "UniformQuantizedDotHybrid",
        "UniformRequantize",
    ]
)


# optionals
OPTIONAL = frozenset(["OptionalFromValue", "OptionalGetValue", "OptionalHasValue", "OptionalNone"])


# composite tensors
COMPOSITE_TENSOR = frozenset(
    ["CompositeTensorVariantFromComponents", "CompositeTensorVariantToComponents"]
)


# in-memory hash tables (file initializers excluded)
LOOKUP = frozenset(
    [
        "AnonymousHashTable",
        "AnonymousMutableDenseHashTable",
        "AnonymousMutableHashTable",
        "AnonymousMutableHashTableOfTensors",
        "HashTable",
        "HashTableV2",
        "InitializeTable",
        "InitializeTableV2",
        "LookupTableExport",
        "LookupTableExportV2",
        "LookupTableFind",
        "LookupTableFindV2",
        "LookupTableImport",
        "LookupTableImportV2",
        "LookupTableInsert",
        "LookupTableInsertV2",
        "LookupTableRemoveV2",
        "LookupTableSize",
        "LookupTableSizeV2",
        "MutableDenseHashTable",
        "MutableDenseHashTableV2",
        "MutableHashTable",
        "MutableHashTableOfTensors",
        "MutableHashTableOfTensorsV2",
        "MutableHashTableV2",
    ]
)


# TensorArrays, stacks, in-memory queues (RecordInput and session handles excluded)
DATA_FLOW = frozenset(
    [
        "AccumulatorApplyGradient",
        "AccumulatorNumAccumulated",
        "AccumulatorSetGlobalStep",
        "AccumulatorTakeGradient",
        "Barrier",
        "BarrierClose",
        "BarrierIncompleteSize",
        "BarrierInsertMany",
        "BarrierReadySize",
        "BarrierTakeMany",
        "ConditionalAccumulator",
        "DynamicPartition",
        "DynamicStitch",
        "FIFOQueue",
        "FIFOQueueV2",
        "FakeQueue",
        "MapClear",
        "MapIncompleteSize",
        "MapPeek",
        "MapSize",
        "MapStage",
        "MapUnstage",
        "MapUnstageNoKey",
        "OrderedMapClear",
        "OrderedMapIncompleteSize",
        "OrderedMapPeek",
        "OrderedMapSize",
        "OrderedMapStage",
        "OrderedMapUnstage",
        "OrderedMapUnstageNoKey",
        "PaddingFIFOQueue",
        "PaddingFIFOQueueV2",
        "ParallelDynamicStitch",
        "PriorityQueue",
        "PriorityQueueV2",
        "QueueClose",
        "QueueCloseV2",
        "QueueDequeue",
        "QueueDequeueMany",
        "QueueDequeueManyV2",
        "QueueDequeueUpTo",
        "QueueDequeueUpToV2",
        "QueueDequeueV2",
        "QueueEnqueue",
        "QueueEnqueueMany",
        "QueueEnqueueManyV2",
        "QueueEnqueueV2",
        "QueueIsClosed",
        "QueueIsClosedV2",
        "QueueSize",
        "QueueSizeV2",
        "RandomShuffleQueue",
        "RandomShuffleQueueV2",
        "ResourceAccumulatorApplyGradient",
        "ResourceAccumulatorNumAccumulated",
        "ResourceAccumulatorSetGlobalStep",
        "ResourceAccumulatorTakeGradient",
        "ResourceConditionalAccumulator",
        "SparseAccumulatorApplyGradient",
        "SparseAccumulatorTakeGradient",
        "SparseConditionalAccumulator",
        "Stack",
        "StackClose",
        "StackCloseV2",
        "StackPop",
        "StackPopV2",
        "StackPush",
        "StackPushV2",
        "StackV2",
        "Stage",
        "StageClear",
        "StagePeek",
        "StageSize",
        "TensorArray",
        "TensorArrayClose",
        "TensorArrayCloseV2",
        "TensorArrayCloseV3",
        "TensorArrayConcat",
        "TensorArrayConcatV2",
        "TensorArrayConcatV3",
        "TensorArrayGather",
        "TensorArrayGatherV2",
        "TensorArrayGatherV3",
        "TensorArrayGrad",
        "TensorArrayGradV2",
        "TensorArrayGradV3",
        "TensorArrayGradWithShape",
        "TensorArrayPack",
        "TensorArrayRead",
        "TensorArrayReadV2",
        "TensorArrayReadV3",
        "TensorArrayScatter",
        "TensorArrayScatterV2",
        "TensorArrayScatterV3",
        "TensorArraySize",
        "TensorArraySizeV2",
        "TensorArraySizeV3",
        "TensorArraySplit",
        "TensorArraySplitV2",
        "TensorArraySplitV3",
        "TensorArrayUnpack",
        "TensorArrayV2",
        "TensorArrayV3",
        "TensorArrayWrite",
        "TensorArrayWriteV2",
        "TensorArrayWriteV3",
        "Unstage",
    ]
)


# resource variables (a checkpoint's graph; frozen graphs have none)
RESOURCE_VARIABLE = frozenset(
    [
        "AssignAddVariableOp",
        "AssignSubVariableOp",
        "AssignVariableOp",
        "ConsumeMutexLock",
        "DestroyResourceOp",
        "DisableCopyOnRead",
        "MutexLock",
        "MutexV2",
        "ReadVariableOp",
        "ResourceGather",
        "ResourceGatherNd",
        "ResourceScatterAdd",
        "ResourceScatterDiv",
        "ResourceScatterMax",
        "ResourceScatterMin",
        "ResourceScatterMul",
        "ResourceScatterSub",
        "ResourceScatterUpdate",
        "VarHandleOp",
        "VarIsInitializedOp",
        "VariableShape",
    ]
)


# ref variables (a checkpoint's graph)
STATE = frozenset(
    [
        "Assign",
        "AssignAdd",
        "AssignSub",
        "CountUpTo",
        "DestroyTemporaryVariable",
        "IsVariableInitialized",
        "ResourceCountUpTo",
        "ResourceScatterNdAdd",
        "ResourceScatterNdMax",
        "ResourceScatterNdMin",
        "ResourceScatterNdSub",
        "ResourceScatterNdUpdate",
        "ScatterAdd",
        "ScatterDiv",
        "ScatterMax",
        "ScatterMin",
        "ScatterMul",
        "ScatterNdAdd",
        "ScatterNdMax",
        "ScatterNdMin",
        "ScatterNdSub",
        "ScatterNdUpdate",
        "ScatterSub",
        "ScatterUpdate",
        "TemporaryVariable",
        "Variable",
        "VariableV2",
    ]
)


# optimizer updates (a training checkpoint's graph)
TRAINING = frozenset(
    [
        "ApplyAdaMax",
        "ApplyAdadelta",
        "ApplyAdagrad",
        "ApplyAdagradDA",
        "ApplyAdagradV2",
        "ApplyAdam",
        "ApplyAddSign",
        "ApplyCenteredRMSProp",
        "ApplyFtrl",
        "ApplyFtrlV2",
        "ApplyGradientDescent",
        "ApplyMomentum",
        "ApplyPowerSign",
        "ApplyProximalAdagrad",
        "ApplyProximalGradientDescent",
        "ApplyRMSProp",
        "ResourceApplyAdaMax",
        "ResourceApplyAdadelta",
        "ResourceApplyAdagrad",
        "ResourceApplyAdagradDA",
        "ResourceApplyAdagradV2",
        "ResourceApplyAdam",
        "ResourceApplyAdamWithAmsgrad",
        "ResourceApplyAddSign",
        "ResourceApplyCenteredRMSProp",
        "ResourceApplyFtrl",
        "ResourceApplyFtrlV2",
        "ResourceApplyGradientDescent",
        "ResourceApplyKerasMomentum",
        "ResourceApplyMomentum",
        "ResourceApplyPowerSign",
        "ResourceApplyProximalAdagrad",
        "ResourceApplyProximalGradientDescent",
        "ResourceApplyRMSProp",
        "ResourceSparseApplyAdadelta",
        "ResourceSparseApplyAdagrad",
        "ResourceSparseApplyAdagradDA",
        "ResourceSparseApplyAdagradV2",
        "ResourceSparseApplyCenteredRMSProp",
        "ResourceSparseApplyFtrl",
        "ResourceSparseApplyFtrlV2",
        "ResourceSparseApplyKerasMomentum",
        "ResourceSparseApplyMomentum",
        "ResourceSparseApplyProximalAdagrad",
        "ResourceSparseApplyProximalGradientDescent",
        "ResourceSparseApplyRMSProp",
        "SparseApplyAdadelta",
        "SparseApplyAdagrad",
        "SparseApplyAdagradDA",
        "SparseApplyAdagradV2",
        "SparseApplyCenteredRMSProp",
        "SparseApplyFtrl",
        "SparseApplyFtrlV2",
        "SparseApplyMomentum",
        "SparseApplyProximalAdagrad",
        "SparseApplyProximalGradientDescent",
        "SparseApplyRMSProp",
    ]
)


# in-process batching
BATCH = frozenset(["Batch", "BatchFunction", "Unbatch", "UnbatchGrad"])


# k-means
CLUSTERING = frozenset(
    ["KMC2ChainInitialization", "KmeansPlusPlusInitialization", "NearestNeighbors"]
)


# SDCA optimizer
SDCA = frozenset(["SdcaFprint", "SdcaOptimizer", "SdcaOptimizerV2", "SdcaShrinkL1"])


# in-memory boosted trees
BOOSTED_TREES = frozenset(
    [
        "BoostedTreesAggregateStats",
        "BoostedTreesBucketize",
        "BoostedTreesCalculateBestFeatureSplit",
        "BoostedTreesCalculateBestFeatureSplitV2",
        "BoostedTreesCalculateBestGainsPerFeature",
        "BoostedTreesCenterBias",
        "BoostedTreesCreateEnsemble",
        "BoostedTreesCreateQuantileStreamResource",
        "BoostedTreesDeserializeEnsemble",
        "BoostedTreesEnsembleResourceHandleOp",
        "BoostedTreesExampleDebugOutputs",
        "BoostedTreesFlushQuantileSummaries",
        "BoostedTreesGetEnsembleStates",
        "BoostedTreesMakeQuantileSummaries",
        "BoostedTreesMakeStatsSummary",
        "BoostedTreesPredict",
        "BoostedTreesQuantileStreamResourceAddSummaries",
        "BoostedTreesQuantileStreamResourceDeserialize",
        "BoostedTreesQuantileStreamResourceFlush",
        "BoostedTreesQuantileStreamResourceGetBucketBoundaries",
        "BoostedTreesQuantileStreamResourceHandleOp",
        "BoostedTreesSerializeEnsemble",
        "BoostedTreesSparseAggregateStats",
        "BoostedTreesSparseCalculateBestFeatureSplit",
        "BoostedTreesTrainingPredict",
        "BoostedTreesUpdateEnsemble",
        "BoostedTreesUpdateEnsembleV2",
        "IsBoostedTreesEnsembleInitialized",
        "IsBoostedTreesQuantileStreamResourceInitialized",
    ]
)


# assertions and in-memory summaries (Print, PrintV2 and summary writers excluded)
LOGGING = frozenset(
    [
        "Assert",
        "AudioSummaryV2",
        "HistogramSummary",
        "ImageSummary",
        "MergeSummary",
        "ScalarSummary",
        "TensorSummary",
        "TensorSummaryV2",
    ]
)


# left out of the groups above although their module is allowed: they touch files or other
# processes (ImmutableConst memory-maps a file, RemoteCall runs on another task, ...)
EXCLUDED = frozenset(
    [
        "Abort",
        "DeleteSessionTensor",
        "GetSessionHandle",
        "GetSessionHandleV2",
        "GetSessionTensor",
        "ImmutableConst",
        "InitializeTableFromDataset",
        "InitializeTableFromTextFile",
        "InitializeTableFromTextFileV2",
        "RecordInput",
        "RemoteCall",
    ]
)


# ops TensorFlow itself writes into a graph when it lowers a Case (Grappler's control-flow
# lowering, used before freezing)
LOWERED = frozenset({"_SwitchN"})


ALLOWED = frozenset().union(
    LOWERED,
    MATH,
    ARRAY,
    NN,
    IMAGE,
    LINALG,
    SPECTRAL,
    SPECIAL_MATH,
    BITWISE,
    SPARSE,
    SET,
    MANIP,
    RAGGED_ARRAY,
    RAGGED_CONVERSION,
    RAGGED_MATH,
    STRING,
    PARSING,
    CONTROL_FLOW,
    FUNCTIONAL,
    LIST,
    MAP,
    RANDOM,
    STATELESS_RANDOM,
    STATELESS_RANDOM_V2,
    STATEFUL_RANDOM,
    RANDOM_INDEX_SHUFFLE,
    COUNT,
    CTC,
    CANDIDATE_SAMPLING,
    AUDIO,
    RNN,
    CUDNN_RNN,
    UNIFORM_QUANT,
    OPTIONAL,
    COMPOSITE_TENSOR,
    LOOKUP,
    DATA_FLOW,
    RESOURCE_VARIABLE,
    STATE,
    TRAINING,
    BATCH,
    CLUSTERING,
    SDCA,
    BOOSTED_TREES,
    LOGGING,
)
